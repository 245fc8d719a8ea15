// generate(): the engine's boundary. Exceptions stop here and become a status and one sentence.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "io/safetensors.h"
#include "memory/governor.h"
#include "memory/oom_retry.h"
#include "memory/simulated_device.h"
#include "models/weights.h"
#include "pipeline/conditioning.h"
#include "pipeline/job_store.h"
#include "pipeline/section_loop.h"
#include "pipeline/section_schedule.h"

namespace framesmith {

const char* to_string(StatusCode s) {
  switch (s) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kOutOfMemory:
      return "out of memory";
    case StatusCode::kBadInput:
      return "bad input";
    case StatusCode::kFailed:
      return "failed";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

// (1, 3, T, H, W) in [-1, 1] -> RGB8 frames, rounding as FramePack's save_bcthw_as_mp4 does:
// (x + 1) * 127.5, clipped, truncated to uint8.
Frames to_frames(const at::Tensor& pixels) {
  at::Tensor p = pixels.detach().to(at::kCPU).to(at::kFloat)[0];  // (3, T, H, W)
  at::Tensor u8 =
      ((p + 1.0) * 127.5).clamp(0, 255).to(at::kByte).permute({1, 2, 3, 0}).contiguous();
  Frames f;
  f.count = static_cast<int>(u8.size(0));
  f.height = static_cast<int>(u8.size(1));
  f.width = static_cast<int>(u8.size(2));
  f.rgb.resize(static_cast<std::size_t>(u8.numel()));
  std::memcpy(f.rgb.data(), u8.data_ptr(), f.rgb.size());
  return f;
}

Frames hw3_to_frames(const at::Tensor& hw3) {
  at::Tensor c = hw3.contiguous();
  Frames f;
  f.count = 1;
  f.height = static_cast<int>(c.size(0));
  f.width = static_cast<int>(c.size(1));
  f.rgb.resize(static_cast<std::size_t>(c.numel()));
  std::memcpy(f.rgb.data(), c.data_ptr(), f.rgb.size());
  return f;
}

at::Device parse_device(const std::string& d) {
  if (d == "cpu") return at::kCPU;
  if (d.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA())
      throw Error("device \"" + d + "\" asked for, but this build of Framesmith (LibTorch " +
                  std::string(compat::torch_version_string()) +
                  ") has no CUDA or no GPU is visible");
    at::Device device(d);
    // "cuda" is device 0 everywhere (probe, memory fraction and tensors alike), not whichever
    // device happens to be current.
    if (!device.has_index()) device.set_index(0);
    return device;
  }
  throw Error("unknown device \"" + d + "\"");
}

class Job {
 public:
  Job(const GenerationRequest& r, const GenerationCallbacks& cb)
      : req_(r), cb_(cb), t0_(Clock::now()) {}

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

  void emit(EventType type, const std::string& phase, std::map<std::string, double> numbers = {},
            std::map<std::string, std::string> texts = {}) {
    if (!cb_.on_event) return;
    Event e;
    e.type = type;
    e.t_s = elapsed();
    e.phase = phase;
    e.numbers = std::move(numbers);
    e.texts = std::move(texts);
    deliver(e);
  }

  // Events come from the job thread and from the memory telemetry's sampler thread: one at a time.
  void deliver(const Event& e) {
    if (!cb_.on_event) return;
    std::lock_guard<std::mutex> lock(events_mutex_);
    cb_.on_event(e);
  }

  void progress(const std::string& phase, int section = 0, int sections = 0, int step = 0,
                int steps = 0) {
    Progress p{phase, section, sections, step, steps, elapsed()};
    if (cb_.on_progress) cb_.on_progress(p);
    emit(EventType::kProgress, phase,
         {{"section", section}, {"sections", sections}, {"step", step}, {"steps", steps}});
  }

  void check_cancel() const {
    if (cb_.cancel && cb_.cancel->load()) throw Cancelled();
  }

  GenerationResult run();
  // A new section's events and on_section_saved (resumed sections were reported before).
  void section_done(const pipeline::SectionOutput& out, int sections,
                    const std::string& latents_path, std::int64_t latent_frames);
  void deliver_chunk(const pipeline::SectionOutput& out, int sections);
  // The video so far as RGB8, when no on_chunk client took it (empty otherwise).
  Frames assembled_video() const {
    const at::Tensor v = cb_.on_chunk ? at::Tensor() : assembler_.video_so_far();
    return v.defined() ? to_frames(v) : Frames();
  }
  // What the job made so far (finished sections' video, the cropped input): kept on failure.
  GenerationResult partial() const {
    GenerationResult r = result_;
    r.video = assembled_video();
    return r;
  }

 private:
  GenerationRequest req_;  // a copy: resuming replaces it with the job folder's request
  const GenerationCallbacks& cb_;
  Clock::time_point t0_;
  GenerationResult result_;
  std::mutex events_mutex_;
  // Without an on_chunk client: the whole video, for GenerationResult::video.
  pipeline::VideoAssembler assembler_;
  std::int64_t frames_so_far_ = 0;  // final frames handed out plus the current tail
  std::int64_t tail_frames_ = 0;
};

GenerationResult Job::run() {
  if (req_.resume) req_ = pipeline::resumed_request(req_);
  validate_request(req_);
  if (req_.image.count < 1 || req_.image.width < 1 || req_.image.height < 1 ||
      req_.image.rgb.size() < std::size_t(req_.image.width) * req_.image.height * 3)
    throw Error("no start image (or its pixel buffer is smaller than its size says)");
  const at::Device device = parse_device(req_.device);
  // Creates the job folder (fresh job) or reads what the stopped job saved (resume).
  pipeline::JobStore store(req_);
  const bool on_cuda = device.is_cuda();
  // FramePack's precisions on CUDA; float32 on the CPU (bf16 matmuls are slow there).
  const at::ScalarType transformer_dtype = on_cuda ? at::kBFloat16 : at::kFloat;
  const at::ScalarType vae_dtype = on_cuda ? at::kHalf : at::kFloat;

  const ModelSet models = locate_model_set(req_.model_dir, req_.variant == TransformerVariant::kF1
                                                               ? TransformerVariant::kF1
                                                               : TransformerVariant::kOriginal);
  for (Component c : {Component::kTransformer, Component::kVae})
    if (!models.find(c))
      throw Error(std::string("the model set has no ") + folder_name(c) + "/ (" +
                  models.description + ")");

  // The memory governor (memory/governor.h): a budget on the CPU selects the simulated device.
  memory::ComputeDevice compute;
  compute.device = device;
  compute.simulated = !on_cuda && req_.vram_budget_bytes > 0;
  std::unique_ptr<memory::SimulatedDeviceScope> simulated;
  if (compute.simulated && !memory::simulated_device::installed())
    simulated = std::make_unique<memory::SimulatedDeviceScope>(req_.vram_budget_bytes);
  // Declared before the governor, so that it lets go of them before they are destroyed.
  std::shared_ptr<PackedTransformer> transformer;
  std::shared_ptr<Vae> vae;
  memory::GovernorOptions governor_options;
  governor_options.device = compute;
  governor_options.budget = req_.vram_budget_bytes;
  governor_options.limits.preserved_memory = req_.preserved_memory_bytes;
  governor_options.profile_path = memory::default_profile_path(on_cuda);
  // FRAMESMITH_MEMORY_PLAN=largest: every phase starts at its largest setting (estimates are
  // still reported); for testing the OOM recovery and for measuring.
  if (const char* plan = std::getenv("FRAMESMITH_MEMORY_PLAN");
      plan != nullptr && std::string(plan) == "largest")
    governor_options.use_plan = false;
  memory::Governor governor(
      governor_options, [this](const Event& e) { deliver(e); }, cb_.cancel, t0_);
  const memory::ModelFootprint footprint = memory::read_model_footprint(models, on_cuda);

  check_cancel();
  progress("image");
  const at::Tensor image_hw3 = pipeline::prepare_start_image(req_.image, req_.resolution);
  result_.input_image = hw3_to_frames(image_hw3);
  store.save_start_image(image_hw3);
  if (cb_.on_input_image) cb_.on_input_image(result_.input_image);
  {
    memory::JobShape shape;
    shape.height = image_hw3.size(0);
    shape.width = image_hw3.size(1);
    shape.latent_window = req_.latent_window;
    shape.sections = pipeline::total_latent_sections(req_.seconds, req_.latent_window);
    governor.plan_job(footprint, shape);
  }

  sampling::HunyuanConditioning cond;
  if (store.conditioning()) {
    cond = *store.conditioning();  // resumed: encoded before
  } else if (!req_.conditioning_file.empty()) {
    cond = pipeline::load_conditioning(req_.conditioning_file);
  } else {
    progress("text");
    // Low-VRAM: the LLaMA streamed onto the device per layer, CLIP whole (memory/governor.h).
    governor.run_text_encoder(
        footprint.text_encoder_bytes, footprint.text_encoder_2_bytes,
        [&](at::Device d, const memory::Governor::LlamaPlacement& place_llama) {
          pipeline::TextEncodeHooks hooks;
          hooks.place_llama = place_llama;
          pipeline::encode_text(models, req_.prompt, req_.negative_prompt, req_.cfg, d, cond,
                                hooks);
        });
  }
  check_cancel();
  if (!cond.image_embeddings.defined()) {
    progress("image encoder");
    governor.run_encoder("image", footprint.image_encoder_bytes, [&](at::Device d) {
      cond.image_embeddings = pipeline::encode_image(models, image_hw3, d);
    });
  }
  check_cancel();
  store.save_conditioning(cond);

  progress("loading");
  // Loaded on the host: the governor places the transformer's modules (resident or streamed per
  // module) from here on, so a model larger than the card never needs to fit whole. The VAE
  // object stays on the host too; the device gets a copy to encode the start image and the
  // streamed decoder's weights to decode.
  transformer = load_transformer(models.find(Component::kTransformer)->path, transformer_dtype,
                                 compute.has_device_memory() ? at::Device(at::kCPU) : device);
  governor.attach_transformer(*transformer);
  const std::string vae_path = models.find(Component::kVae)->path;
  vae = load_vae(vae_path, vae_dtype, at::kCPU);
  governor.attach_decoder(std::make_shared<memory::StreamedVaeDecoder>(
      vae->config(),
      Weights(std::make_shared<const io::TensorStore>(io::TensorStore::open(vae_path)), vae_dtype,
              at::kCPU)));

  pipeline::SectionLoopInputs in;
  in.start_image =
      image_hw3.permute({2, 0, 1}).to(at::kFloat).div(127.5).sub(1.0).unsqueeze(0).unsqueeze(2);
  in.conditioning = cond;
  in.start_latent = store.start_latent();  // undefined unless resumed: the loop encodes it
  in.resume_sections = store.sections();
  if (!in.start_latent.defined()) {
    progress("vae encode");
    in.start_latent = governor.encode_start_latent(
        [&](at::Device d) {
          if (!d.is_cpu()) return load_vae(vae_path, vae_dtype, d);
          return on_cuda ? load_vae(vae_path, at::kFloat, at::kCPU) : vae;  // CPU: float32
        },
        in.start_image, footprint.vae_encoder_bytes + footprint.vae_decoder_bytes);
  }
  result_.sections_resumed = static_cast<int>(in.resume_sections.size());
  result_.sections_done = result_.sections_resumed;
  pipeline::SectionLoopParams params;
  params.variant = req_.variant == TransformerVariant::kF1 ? pipeline::LoopVariant::kF1
                                                           : pipeline::LoopVariant::kOriginal;
  params.total_seconds = req_.seconds;
  params.latent_window_size = req_.latent_window;
  params.steps = req_.steps;
  params.gs = req_.distilled_cfg;
  params.cfg = req_.cfg;
  params.rs = req_.cfg_rescale;
  params.seed = req_.seed;
  if (req_.shift > 0) params.shift = req_.shift;
  params.use_teacache = req_.teacache;
  params.sample_dtype = transformer_dtype;
  params.transformer_device = device;
  const int sections = pipeline::section_count(params);
  result_.sections_total = sections;

  pipeline::SectionLoopCallbacks lcb;
  lcb.cancel = cb_.cancel;
  lcb.on_start_latent = [&](const at::Tensor& start) { store.save_start_latent(start); };
  lcb.on_step = [&](const pipeline::StepProgress& p, const at::Tensor& preview) {
    progress("sampling", p.section + 1, p.num_sections, p.step + 1, p.num_steps);
    if (cb_.on_preview && preview.defined()) {
      Progress pr{"sampling", p.section + 1, p.num_sections, p.step + 1, p.num_steps, elapsed()};
      cb_.on_preview(hw3_to_frames(preview), pr);
    }
  };
  if (!cb_.on_preview)
    lcb.on_step = [&](const pipeline::StepProgress& p, const at::Tensor&) {
      progress("sampling", p.section + 1, p.num_sections, p.step + 1, p.num_steps);
    };
  // Each section's latents are saved as soon as they are sampled, before the decode: a decode
  // that fails (out of memory at the smallest rung, a kill) loses no sampling, and the next
  // section never starts before its predecessor is on disk.
  std::string latents_path;
  lcb.on_sampled = [&](int section, const at::Tensor& new_latents) {
    // Non-finite latents would decode to a black or garbage video and poison every later
    // section's context: stop here, naming the section, with the earlier sections kept.
    if (!at::isfinite(new_latents).all().item<bool>())
      throw Error("section " + std::to_string(section + 1) + " of " + std::to_string(sections) +
                  ": the sampled latents hold NaN or infinite values (a damaged model, or an "
                  "unstable setting such as a very high CFG); nothing of this section was kept");
    latents_path = store.save_section(section, sections, new_latents);
  };
  lcb.on_section = [&](const pipeline::SectionOutput& out) {
    frames_so_far_ += out.final_pixels.size(2) + out.tail_pixels.size(2) - tail_frames_;
    tail_frames_ = out.tail_pixels.size(2);
    if (!out.resumed) section_done(out, sections, latents_path, store.latent_frames());
    deliver_chunk(out, sections);
  };
  lcb.wrap_model = governor.model_wrapper();
  lcb.decode = [&](const at::Tensor& latents) {
    return governor.decode(latents, vae->config().scaling_factor);
  };
  pipeline::SectionLoopResult r = pipeline::run_section_loop(*transformer, *vae, in, params, lcb);
  governor.finish();  // nothing of the job stays on the device
  result_.sections_done = r.num_sections;
  result_.status = StatusCode::kOk;
  result_.video = assembled_video();
  emit(EventType::kFinished, "done", {{"frames", double(r.total_frames)}, {"seconds", elapsed()}});
  return result_;
}

void Job::section_done(const pipeline::SectionOutput& out, int sections,
                       const std::string& latents_path, std::int64_t latent_frames) {
  SectionSaved saved;
  saved.section = out.section + 1;
  saved.sections = sections;
  saved.latents_path = latents_path;
  saved.latent_frames = latent_frames;
  result_.sections_done = out.section + 1;
  emit(EventType::kSectionDone, "section " + std::to_string(out.section + 1),
       {{"section", out.section + 1},
        {"sections", sections},
        {"latent_frames", double(out.new_latents.size(2))},
        {"total_latent_frames", double(saved.latent_frames)},
        {"frames", double(frames_so_far_)}},
       {{"latents", saved.latents_path}});
  if (cb_.on_section_saved) cb_.on_section_saved(saved);
}

// The chunk goes to the client, or, without one, into the whole video the result returns.
void Job::deliver_chunk(const pipeline::SectionOutput& out, int sections) {
  if (!out.resumed)
    emit(EventType::kChunkDecoded, "decode section " + std::to_string(out.section + 1),
         {{"frames", double(frames_so_far_)}});
  if (!cb_.on_chunk) {
    assembler_.add(out);
    return;
  }
  VideoChunk chunk;
  chunk.section = out.section + 1;
  chunk.sections = sections;
  chunk.resumed = out.resumed;
  chunk.final_frames = to_frames(out.final_pixels);
  chunk.first_final_frame = out.first_final_frame;
  chunk.tail = to_frames(out.tail_pixels);
  chunk.first_tail_frame = out.first_tail_frame;
  chunk.total_frames = out.total_frames;
  cb_.on_chunk(chunk);
}

}  // namespace

GenerationResult generate(const GenerationRequest& request, const GenerationCallbacks& callbacks) {
  Job job(request, callbacks);
  auto fail = [&](StatusCode code, const std::string& message) {
    GenerationResult failed = job.partial();
    failed.status = code;
    failed.message = message;
    job.emit(EventType::kError, "error", {}, {{"message", message}, {"status", to_string(code)}});
    return failed;
  };
  try {
    return job.run();
  } catch (const Cancelled&) {
    return fail(StatusCode::kCancelled, "stopped by the user");
  } catch (const memory::OutOfMemory& e) {
    return fail(StatusCode::kOutOfMemory, e.what());
  } catch (const Error& e) {
    return fail(StatusCode::kBadInput, e.what());
  } catch (const std::exception& e) {
    std::string msg;
    if (memory::is_out_of_memory(e, &msg))
      return fail(StatusCode::kOutOfMemory, "out of memory: " + msg);
    return fail(StatusCode::kFailed, e.what());
  }
}

}  // namespace framesmith
