#include "memory/governor.h"

#include <algorithm>
#include <exception>
#include <optional>

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/units.h"
#include "memory/allocator_setup.h"
#include "memory/oom_retry.h"
#include "memory/phase.h"
#include "memory/simulated_device.h"
#include "memory/telemetry.h"
#include "models/llama.h"
#include "models/transformer_packed.h"
#include "models/vae.h"

namespace framesmith::memory {

namespace {

// The CUDA caching allocator refuses allocations beyond `fraction` of the device: how a budget
// below the card's size is enforced for real (and how tools/gpu_memory_check.sh emulates cards).
void set_cuda_memory_fraction(const ComputeDevice& d, double fraction) {
#if FRAMESMITH_HAS_CUDA
  if (d.is_cuda())
    compat::cuda_set_memory_fraction(std::clamp(fraction, 0.0, 1.0),
                                     d.device.has_index() ? d.device.index() : 0);
#else
  (void)d;
  (void)fraction;
#endif
}

// Calls f when the scope ends, however it ends.
template <typename F>
class Finally {
 public:
  explicit Finally(F f) : f_(std::move(f)) {}
  ~Finally() { f_(); }
  Finally(const Finally&) = delete;
  Finally& operator=(const Finally&) = delete;

 private:
  F f_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Set-up and events

Governor::Governor(GovernorOptions options, EventSink sink, const std::atomic<bool>* cancel,
                   std::chrono::steady_clock::time_point t0)
    : options_(std::move(options)), sink_(std::move(sink)), cancel_(cancel), t0_(t0) {
  const ComputeDevice& d = options_.device;
  if (d.simulated) {
    if (!simulated_device::installed())
      throw Error("memory governor: the simulated device is not installed");
    probe_ = make_simulated_probe();
  } else if (d.is_cuda()) {
    // The allocator's configuration (expandable segments on LibTorch >= 2.1, unless the user set
    // one) is decided before the probe starts CUDA, and reported.
    emit(allocator_event(cuda_allocator_choice(), now_s()));
    probe_ = make_cuda_probe(d.device.has_index() ? d.device.index() : 0, options_.budget);
  }
  if (probe_) {
    const MemorySnapshot s = probe_->snapshot();
    budget_ = options_.budget > 0 ? options_.budget : s.total;
    if (d.simulated && options_.budget > 0) simulated_device::set_budget(options_.budget);
    if (d.is_cuda() && options_.budget > 0 && s.total > 0) {
      set_cuda_memory_fraction(d, double(options_.budget) / double(s.total));
      memory_fraction_set_ = true;
    }
    policy_ =
        choose_residency_policy(std::min(budget_, free_bytes(probe_->snapshot())), options_.limits);
  } else {
    policy_ = make_high_vram_policy(options_.limits);  // plain CPU: nothing moves
  }
  profile_ = PeakProfile::load(options_.profile_path);
  decode_ctx_.device = d;
  decode_ctx_.cancel = cancel_;
  decode_ctx_.on_event = ladder_sink();
  decode_ctx_.hooks = hooks();
  if (probe_ && options_.telemetry) {
    TelemetryOptions t;
    t.period = options_.telemetry_period;
    t.t0 = t0_;
    telemetry_ = std::make_unique<MemoryTelemetry>(
        *probe_, [this](const Event& e) { emit(e); }, t);
    telemetry_->start();
  }
  Event e;
  e.type = EventType::kResidency;
  e.t_s = now_s();
  e.phase = "setup";
  e.texts["policy"] = policy_->name();
  e.texts["device"] = d.name();
  e.texts["action"] = "memory governor: " + policy_->name() + " on " + d.name() +
                      (budget_ > 0 ? ", budget " + format_size(double(budget_)) : "");
  if (budget_ > 0) e.numbers["budget"] = double(budget_);
  emit(e);
}

Governor::~Governor() {
  try {
    finish();
  } catch (...) {
  }
}

double Governor::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

void Governor::emit(const Event& e) {
  if (e.type == EventType::kOomRecovered && e.text("outcome") == "retry") ++recoveries_;
  if (!sink_) return;
  std::lock_guard<std::mutex> lock(sink_mutex_);
  sink_(e);
}

void Governor::emit_residency(const std::string& phase, const std::string& action) {
  if (action.empty()) return;
  Event e;
  e.type = EventType::kResidency;
  e.t_s = now_s();
  e.phase = phase;
  e.texts["action"] = action;
  if (probe_) {
    const MemorySnapshot s = probe_->snapshot();
    e.numbers["allocated"] = double(s.allocated);
    e.numbers["free"] = double(free_bytes(s));
  }
  emit(e);
}

OomLadderHooks Governor::hooks() {
  OomLadderHooks h;
  h.probe = probe_.get();
  h.now_s = [this] { return now_s(); };
  h.release_host_memory = [this] { release_host_memory(); };
  return h;
}

void Governor::release_host_memory() {
  if (options_.release_host_memory) options_.release_host_memory();
#if defined(__GLIBC__)
  malloc_trim(0);  // freed heap back to the system, so that the retry (or others) can have it
#endif
}

void Governor::require_host_for_cpu_rung(std::int64_t weight_bytes, const std::string& what) const {
  const std::int64_t element = std::max<std::int64_t>(1, model_.encoder_element_bytes);
  require_host_memory(weight_bytes / element * 4, what + " on the CPU (float32 weights)",
                      options_.host_memory);
}

Governor::EventSink Governor::ladder_sink(std::map<std::string, double> extra) {
  return [this, extra = std::move(extra)](const Event& e) {
    Event copy = e;
    for (const auto& [k, v] : extra) copy.numbers[k] = v;
    emit(copy);
  };
}

std::int64_t Governor::allocated() const {
  return probe_ ? probe_->snapshot().allocated : 0;
}
std::int64_t Governor::peak() const {
  return probe_ ? probe_->snapshot().peak : 0;
}
void Governor::reset_peak() {
  if (probe_) probe_->reset_peak();
}

// At phase boundaries only (FramePack's unload / load / offload points), never inside a step or
// a decode chunk: emptying the cache there would cost every step its allocations again.
void Governor::empty_cache() {
  if (probe_) probe_->empty_cache();
}

// The measured peak goes into the profile (later plans learn from it) and out as a `peak` event,
// so that a run says how far each estimate was from what the device held. On the simulated
// device the event also says how many of the peak's bytes nobody marked (counted by default).
void Governor::record_peak(const std::string& phase, std::int64_t estimate, std::int64_t measured,
                           PeakScope scope, ProfileUse use) {
  if (!probe_ || !plan_ || estimate <= 0 || measured <= 0) return;
  if (scope == PeakScope::kActivations && use == ProfileUse::kLearn)
    profile_.record(profile_key(probe_->name(), phase, model_), estimate, measured);
  Event e;
  e.type = EventType::kPeak;
  e.t_s = now_s();
  e.phase = phase;
  e.numbers = {{"estimate", double(estimate)},
               {"measured", double(measured)},
               {"ratio", double(measured) / double(estimate)}};
  e.texts["scope"] = scope == PeakScope::kActivations ? "activations" : "phase";
  if (options_.device.simulated)
    e.numbers["unmarked_peak"] = double(simulated_device::stats().unmarked_peak);
  emit(e);
}

void Governor::record_phase_peak(const std::string& phase, std::int64_t base) {
  if (!plan_) return;
  const PhasePlan* p = plan_->find(phase);
  if (p) record_peak(phase, p->estimate, peak() - base, PeakScope::kWholePhase);
}

// ---------------------------------------------------------------------------------------------
// Plan

const MemoryPlan& Governor::plan_job(const ModelFootprint& model, const JobShape& job,
                                     const std::vector<std::string>& only_phases) {
  model_ = model;
  job_ = job;
  const AttentionKernel attention = attention_kernel_for(options_.device.is_cuda());
  plan_ = std::make_unique<MemoryPlan>(
      make_memory_plan(model, job, probe_ ? budget_ : 0, options_.limits, profile_,
                       probe_ ? probe_->name() : "cpu", attention));
  for (const PhasePlan& p : plan_->phases)
    if (only_phases.empty() ||
        std::find(only_phases.begin(), only_phases.end(), p.phase) != only_phases.end())
      emit(p.event(now_s()));
  decode_ctx_.rungs = plan_->decode_rungs;
  decode_ctx_.rung = options_.use_plan ? plan_->decode_rung : 0;
  attention_chunk_ = options_.use_plan ? plan_->attention_chunk : 1024;
  if (options_.use_plan && probe_ && plan_->resident_blocks < model.transformer_blocks)
    planned_blocks_ = plan_->resident_blocks;
  attention_ = attention;
  return *plan_;
}

void Governor::plan_for_prompt(std::int64_t text_tokens) {
  if (!plan_ || text_tokens <= 0 || text_tokens == job_.text_tokens) return;
  JobShape job = job_;
  job.text_tokens = text_tokens;
  plan_job(model_, job, {"sampling", "decode"});
}

// ---------------------------------------------------------------------------------------------
// Encoders

void Governor::run_encoder(const std::string& phase, std::int64_t weight_bytes,
                           const std::function<void(at::Device)>& encode) {
  PhaseScope scope(phase);
  const ComputeDevice& d = options_.device;
  std::vector<std::string> rungs;
  if (d.has_device_memory()) rungs.push_back("on " + d.name());
  rungs.push_back("on the CPU");
  reset_peak();
  const std::int64_t base = allocated();
  const std::size_t used = run_with_oom_ladder(
      phase, rungs,
      [&](std::size_t k) {
        if (d.has_device_memory() && k == 0) {
          const WeightReservation weights(d, weight_bytes);
          DeviceWork work(d);
          encode(d.device);
        } else {
          require_host_for_cpu_rung(weight_bytes, "the " + phase + " encoder");
          const HostScope host;  // the CPU rung uses host memory, not the device's
          encode(at::kCPU);
        }
      },
      ladder_sink(), hooks());
  if (d.has_device_memory() && used == 0) record_phase_peak(phase, base);
  empty_cache();  // the encoder's weights and activations are gone: give them back
}

namespace {

// The LLaMA's modules (embedding, layers, norm) under a BlockStreamer for one text encoding: each
// is copied onto the device right before it runs, the next one prefetched, the copies dropped
// after each forward; destroyed, everything is back on the host and the hooks are removed.
class StreamedLlama {
 public:
  StreamedLlama(LlamaModel& llama, const ComputeDevice& device, const std::atomic<bool>* cancel)
      : llama_(llama),
        streamer_(
            "LLaMA text encoder", llama.num_modules(),
            [&llama](int i) { return llama.module_tensors(i); }, device,
            [&llama](const std::string& key) { return llama.weight_form(key); }) {
    streamer_.cancel = cancel;
    streamer_.pin_host_memory = false;  // used once a job: pageable copies
    llama_.before_module = [this](int i) { streamer_.before_block(i); };
    llama_.after_forward = [this] { streamer_.release_streamed(); };
  }
  ~StreamedLlama() {
    llama_.before_module = nullptr;
    llama_.after_forward = nullptr;
  }
  StreamedLlama(const StreamedLlama&) = delete;
  StreamedLlama& operator=(const StreamedLlama&) = delete;

  const BlockStreamer& streamer() const { return streamer_; }

 private:
  LlamaModel& llama_;
  BlockStreamer streamer_;
};

}  // namespace

void Governor::run_text_encoder(
    std::int64_t llama_bytes, std::int64_t clip_bytes,
    const std::function<void(at::Device, const LlamaPlacement&)>& encode) {
  PhaseScope scope("text");
  const ComputeDevice& d = options_.device;
  const bool stream = d.has_device_memory() && policy_->stream_text_encoder();
  // High-VRAM loads the LLaMA whole; when that runs out of memory, streaming it comes before the
  // CPU (whose float32 copy is 32 GB for the 8B model).
  std::vector<std::string> rungs;
  std::vector<bool> streamed_rung;
  if (d.has_device_memory()) {
    if (!stream) {
      rungs.push_back("on " + d.name());
      streamed_rung.push_back(false);
    }
    rungs.push_back("on " + d.name() + ", LLaMA streamed per layer");
    streamed_rung.push_back(true);
  }
  rungs.push_back("on the CPU");
  // The LLaMA stays on the host (the caller loaded it there, outside the simulated budget); only
  // its streamed copies count on the device.
  const LlamaPlacement place = [this, &d, clip_bytes](LlamaModel& llama) -> std::shared_ptr<void> {
    auto streamed = std::make_shared<StreamedLlama>(llama, d, cancel_);
    const BlockStreamer& s = streamed->streamer();
    emit_residency("text", "text encoder: LLaMA streamed per layer (" +
                               std::to_string(s.num_blocks()) + " modules, " +
                               format_size(double(s.total_bytes())) + "), CLIP whole (" +
                               format_size(double(clip_bytes)) + ")");
    return streamed;
  };
  reset_peak();
  const std::int64_t base = allocated();
  const std::size_t used = run_with_oom_ladder(
      "text", rungs,
      [&](std::size_t k) {
        if (k < streamed_rung.size()) {
          const bool streamed = streamed_rung[k];
          const WeightReservation weights(d, streamed ? clip_bytes : llama_bytes + clip_bytes);
          DeviceWork work(d);
          encode(d.device, streamed ? place : LlamaPlacement());
        } else {
          require_host_for_cpu_rung(llama_bytes + clip_bytes, "the text encoders");
          const HostScope host;  // the CPU rung uses host memory, not the device's
          encode(at::kCPU, LlamaPlacement());
        }
      },
      ladder_sink(), hooks());
  // The plan's estimate is of the planned way (streamed on low-VRAM, whole on high-VRAM).
  if (d.has_device_memory() && used == 0) record_phase_peak("text", base);
  empty_cache();  // the encoders' weights, streamed copies and activations are gone: give them back
}

at::Tensor Governor::encode_start_latent(
    const std::function<std::shared_ptr<Vae>(at::Device)>& vae_on, const at::Tensor& image,
    std::int64_t vae_bytes) {
  PhaseScope scope("vae encode");
  const ComputeDevice& d = options_.device;
  // Encoding one picture is small next to sampling and decoding: when it does not fit, the CPU
  // computes exactly the same latent (spatial tiles would blend seams into it).
  std::vector<std::string> rungs = {"whole"};
  if (d.has_device_memory()) rungs.push_back("on the CPU");
  at::Tensor latent;
  reset_peak();
  const std::int64_t base = allocated();
  run_with_oom_ladder(
      "vae encode", rungs,
      [&](std::size_t k) {
        const bool on_cpu = k == 1;
        // The CPU rung uses host memory; the device rung counts (by default, then DeviceWork).
        std::optional<HostScope> host;
        if (on_cpu) host.emplace();
        const std::shared_ptr<Vae> vae = vae_on(on_cpu ? at::Device(at::kCPU) : d.device);
        at::Tensor out;
        {
          const WeightReservation weights(on_cpu ? ComputeDevice{} : d, vae_bytes);
          std::unique_ptr<DeviceWork> work;
          if (!on_cpu) work = std::make_unique<DeviceWork>(d);
          // FramePack's vae_encode: the posterior's mode times the scaling factor.
          out = vae->encode(image).mode() * vae->config().scaling_factor;
          out = d.to_host(out).to(at::kCPU, at::kFloat);
        }
        latent = out;
      },
      ladder_sink(), hooks());
  empty_cache();
  if (plan_ && plan_->find("vae encode"))
    record_peak("vae encode",
                estimate_vae_encode_activations(model_.vae, image.size(3), image.size(4),
                                                model_.vae_element_bytes, model_.cpu_convolution),
                peak() - base - vae_bytes);
  return latent;
}

// ---------------------------------------------------------------------------------------------
// Sampling

std::string Governor::SamplingRung::name() const {
  return "resident " + std::to_string(resident) + ", attention " + std::to_string(attention_chunk);
}

void Governor::attach_transformer(PackedTransformer& transformer) {
  residency_.reset();
  residency_ = std::make_unique<TransformerResidency>(transformer, options_.device);
  residency_->modules().cancel = cancel_;
  if (planned_blocks_ >= 0) resident_cap_ = residency_->modules_for_blocks(planned_blocks_);
  transformer.attention_query_chunk = attention_chunk_;
}

void Governor::prepare_sampling() {
  if (!residency_) throw Error("memory governor: no transformer attached");
  BlockStreamer& modules = residency_->modules();
  empty_cache();  // FramePack empties the cache before placing the transformer, once a section
  const int cap = resident_cap_ >= 0 ? resident_cap_ : modules.num_blocks();
  if (probe_)
    place_transformer(cap);
  else
    modules.set_resident_count(modules.num_blocks());
  // The step ladder from here: fewer resident modules, then smaller attention blocks.
  sampling_rungs_.clear();
  int resident = modules.resident_count();
  sampling_rungs_.push_back({resident, attention_chunk_});
  while (resident > 0) {
    resident /= 2;
    sampling_rungs_.push_back({resident, attention_chunk_});
  }
  for (std::int64_t c = attention_chunk_ / 4; c >= 16; c /= 4) sampling_rungs_.push_back({0, c});
  sampling_rung_ = 0;
}

// The policy places the modules; when that runs out of memory (high-VRAM: the probe's free
// memory said everything fits, the allocator disagreed), the fallback policy places them instead,
// for the rest of the job. Low-VRAM placement has no fallback: it stops loading modules at an
// out-of-memory by itself (BlockStreamer::load_while_free_above).
void Governor::place_transformer(int cap) {
  std::unique_ptr<ResidencyPolicy> fallback = policy_->fallback();
  std::vector<std::string> rungs = {"placement " + policy_->name()};
  if (fallback) rungs.push_back("placement " + fallback->name());
  std::string action;
  const std::size_t used = run_with_oom_ladder(
      "sampling placement", rungs,
      [&](std::size_t k) {
        ResidencyPolicy& p = k == 0 ? *policy_ : *fallback;
        // What the failed placement left resident stays, down to the preserved memory.
        if (k > 0)
          residency_->modules().offload_until_free(options_.limits.preserved_memory, *probe_);
        action = p.prepare_sampling(*residency_, *probe_, cap);
      },
      ladder_sink(), hooks());
  if (used > 0) {
    // What stayed resident of the failed placement is kept, so the fallback may have placed
    // nothing more: say where the modules are either way.
    action = "memory governor: " + policy_->name() + " placement ran out of memory; " +
             fallback->name() + " from here on: transformer " + residency_->describe() +
             ", the rest streamed per module";
    policy_ = std::move(fallback);
  }
  emit_residency("sampling", action);
}

std::function<sampling::FlowModel(sampling::FlowModel)> Governor::model_wrapper() {
  return [this](sampling::FlowModel model) -> sampling::FlowModel {
    const int section = ++section_;
    step_ = 0;
    sampling_peak_recorded_ = false;
    prepare_sampling();
    return [this, model = std::move(model), section](const at::Tensor& x, const at::Tensor& sigma) {
      return run_step(model, x, sigma, section, ++step_);
    };
  };
}

at::Tensor Governor::run_step(const sampling::FlowModel& model, const at::Tensor& x,
                              const at::Tensor& sigma, int section, int step) {
  const std::string phase = "section " + std::to_string(section) + " step " + std::to_string(step);
  PhaseScope scope(phase);
  const std::size_t first = sampling_rung_;
  std::vector<std::string> names;
  for (std::size_t i = first; i < sampling_rungs_.size(); ++i)
    names.push_back(sampling_rungs_[i].name());
  at::Tensor result;
  PackedTransformer& transformer = residency_->model();
  BlockStreamer& modules = residency_->modules();
  // A failed try may have advanced TeaCache or MagCache (their counters, the last input): the
  // retry starts from the same state, so it computes or reuses exactly as an undisturbed run would.
  const PackedTransformer::CacheState caches = transformer.cache_state();
  // Only the first step of a section is measured: the other steps do not touch the peak stats.
  const bool measure = !sampling_peak_recorded_ && probe_ && plan_ && plan_->find("sampling") &&
                       model_.has_transformer;
  std::int64_t base = 0;
  int tries = 0;  // the host rung retries the same rung: a retry is not always a new rung
  const std::size_t done = run_with_oom_ladder(
      phase, names,
      [&](std::size_t k) {
        const SamplingRung& r = sampling_rungs_[first + k];
        if (tries++ > 0) transformer.restore_cache_state(caches);
        if (modules.resident_count() > r.resident) {
          modules.set_resident_count(r.resident);
          resident_cap_ = r.resident;
        }
        transformer.attention_query_chunk = r.attention_chunk;
        attention_chunk_ = r.attention_chunk;
        sampling_rung_ = first + k;
        if (measure) {
          reset_peak();
          modules.reset_streamed_peak();
          base = allocated();
        }
        const Finally end([this] { residency_->end_forward(); });
        DeviceWork work(options_.device);
        result = options_.device.to_host(model(x, sigma));
      },
      ladder_sink({{"section", double(section)}, {"step", double(step)}}), hooks());
  if (measure && done == 0)  // at the planned setting
    // With modules streamed, the peak held between one and all of the streamed copies counted
    // here: subtracting all of them may read low, so such a step only reports.
    record_sampling_peak(
        peak() - base - modules.streamed_peak_bytes(),
        modules.streamed_peak_bytes() > 0 ? ProfileUse::kReportOnly : ProfileUse::kLearn);
  return result;
}

// The first step of each section that ran at its planned setting measures the activations'
// peak: what the device held at its peak beyond the resident weights and the streamed copies.
void Governor::record_sampling_peak(std::int64_t measured, ProfileUse use) {
  sampling_peak_recorded_ = true;
  record_peak(
      "sampling",
      estimate_sampling_activations(model_.transformer, job_.sampling_tokens(model_.transformer),
                                    model_.transformer_element_bytes, attention_chunk_, attention_,
                                    job_.step_cache_tensors, job_.padded_text_tokens),
      measured, PeakScope::kActivations, use);
}

// ---------------------------------------------------------------------------------------------
// Decode

void Governor::attach_decoder(std::shared_ptr<StreamedVaeDecoder> decoder) {
  decoder_ = std::move(decoder);
}

at::Tensor Governor::decode(const at::Tensor& scaled_latents, double scaling_factor) {
  if (!decoder_) throw Error("memory governor: no VAE decoder attached");
  PhaseScope scope("decode");
  const ComputeDevice& d = options_.device;
  if (residency_ && probe_) emit_residency("decode", policy_->prepare_decode(*residency_, *probe_));
  empty_cache();  // what the offloaded modules held goes back before the decoder loads
  if (!decoder_->loaded()) {
    try {
      decoder_->load(d);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e) || !residency_) throw;
      // Room for the decoder's weights: every transformer block back to the host.
      residency_->modules().offload_all();
      emit_residency("decode", "transformer: all modules offloaded to load the VAE decoder");
      decoder_->load(d);
    }
    if (d.has_device_memory())
      emit_residency("decode", "VAE decoder loaded whole (" +
                                   format_size(double(decoder_->weight_bytes())) + ")");
  }
  at::Tensor z;
  {
    HostScope host;
    z = scaled_latents.to(at::kCPU, at::kFloat) / scaling_factor;
  }
  reset_peak();
  const std::int64_t base = allocated();
  const std::size_t rung = decode_ctx_.rung;
  at::Tensor pixels = decoder_->decode(z, options_.decode_tiling, decode_ctx_);
  if (plan_ && decode_ctx_.rung == rung && rung < decode_ctx_.rungs.size()) {
    DecodeShape shape;
    shape.latent_frames = z.size(2);
    shape.latent_height = z.size(3);
    shape.latent_width = z.size(4);
    shape.element_bytes = static_cast<std::int64_t>(c10::elementSize(decoder_->dtype()));
    shape.cpu_convolution = !d.is_cuda();
    record_peak("decode",
                estimate_decode_peak(decoder_->config(), shape, decode_ctx_.rungs[rung],
                                     options_.decode_tiling.temporal),
                peak() - base);
  }
  if (policy_->unload_after_use() && d.has_device_memory()) {
    decoder_->unload();
    empty_cache();
    emit_residency("decode", "VAE decoder unloaded");
  }
  return pixels;
}

// ---------------------------------------------------------------------------------------------
// End

void Governor::finish() {
  if (finished_) return;
  finished_ = true;
  residency_.reset();
  if (decoder_) decoder_->unload();
  decoder_.reset();
  if (memory_fraction_set_) set_cuda_memory_fraction(options_.device, 1.0);
  if (probe_) probe_->empty_cache();
  profile_.save(options_.profile_path);
  if (telemetry_) {
    try {
      telemetry_->stop();
    } catch (const std::exception&) {
      // A failing event callback stops the samples, not the job.
    }
    telemetry_.reset();
  }
}

}  // namespace framesmith::memory
