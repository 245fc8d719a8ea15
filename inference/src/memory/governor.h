// The memory governor: keeps every phase of a generation job inside the device budget and
// recovers from out-of-memory errors without losing work.
//
//  - At the start it picks the residency policy (high / low VRAM), starts the telemetry sampler
//    (>= 10 Hz, tagged with the current phase) and, given the model and job shape, plans every
//    phase (plan events: chunk sizes, resident blocks, attention block).
//  - Every phase runs inside an OOM ladder: the encoders and the start image's VAE encode fall
//    back to the CPU (same result), each sampling step offloads blocks or shrinks the attention
//    block and retries THE SAME STEP (the sampler's state is on the host), each decode chunk moves
//    to a smaller chunk and retries the same chunk. Only when the smallest setting fails does the
//    job stop, with a message saying what it needed. Every recovery is an `oom_recovered` event.
//  - At the end (finish(), or the destructor) the device holds nothing of the job again.
//
// The transformer stays on the host as loaded; its modules (embedders, refiner, blocks, output)
// are copied to the device by the policy, and a retried step restores the caches' state first
// (TeaCache's, MagCache's).
//
// Text encoding: in low-VRAM the LLaMA stays on the host and its modules (embedding, layers,
// norm) are streamed onto the device at use with the next one prefetched (FramePack's
// DynamicSwapInstaller), CLIP loaded whole; in high-VRAM both are loaded whole; the CPU is the
// last rung either way.
//
// Known limits: a streamed LLaMA forward prefetches one layer past the last one hidden_state(-3)
// uses (BlockStreamer cannot be told where a forward stops); the CUDA paths (side-stream
// prefetch, pinned copies, memory fraction) are written against LibTorch 2.x but have only run in
// the simulated device's equivalent here.
//
// On the simulated device (memory/simulated_device.h) the same code runs against a byte budget,
// which is how the tests prove all of this without a GPU.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "framesmith/events.h"
#include "memory/chunked_decode.h"
#include "memory/device_probe.h"
#include "memory/host_memory.h"
#include "memory/planner.h"
#include "memory/residency.h"
#include "sampling/unipc.h"

namespace framesmith {
class LlamaModel;
class PackedTransformer;
class Vae;
}  // namespace framesmith

namespace framesmith::memory {

class MemoryTelemetry;

struct GovernorOptions {
  ComputeDevice device;
  std::int64_t budget = 0;  // bytes the job may use on the device; 0: the device's capacity
  ResidencyLimits limits;
  bool use_plan = true;      // estimates pick the starting settings (else the largest ones)
  std::string profile_path;  // measured peaks are remembered here ("" = not kept)
  bool telemetry = true;
  std::chrono::milliseconds telemetry_period{50};  // 20 Hz
  VaeTiling decode_tiling;  // default: diffusers' temporal tiles, i.e. FramePack's own output
  // The host's memory (default: /proc); the CPU rungs check it before they start.
  HostMemoryReader host_memory;
  // The host rung of every ladder: frees what the caller keeps in RAM for speed only (e.g. the
  // prompt cache). The governor also gives freed heap back to the system.
  std::function<void()> release_host_memory;
};

class Governor {
 public:
  using EventSink = std::function<void(const Event&)>;

  // `sink` receives every event (also from the telemetry thread; calls are serialised). `cancel`
  // is checked between transformer blocks and decode chunks.
  Governor(GovernorOptions options, EventSink sink, const std::atomic<bool>* cancel = nullptr,
           std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now());
  ~Governor();  // finish(); never throws
  Governor(const Governor&) = delete;
  Governor& operator=(const Governor&) = delete;

  const ComputeDevice& device() const { return options_.device; }
  std::int64_t budget() const { return budget_; }  // 0: none (plain CPU)
  ResidencyPolicy& policy() { return *policy_; }
  MemoryProbe* probe() { return probe_.get(); }
  double now_s() const;
  void emit(const Event& e);
  void emit_residency(const std::string& phase, const std::string& action);
  std::int64_t recoveries() const { return recoveries_; }

  // Plans the job's phases (one `plan` event each). Without a plan every phase starts at its
  // largest setting.
  // `only_phases`: emit the plan events of these phases only (empty: all).
  const MemoryPlan& plan_job(const ModelFootprint& model, const JobShape& job,
                             const std::vector<std::string>& only_phases = {});
  // Once the prompts are encoded: the transformer crops the text to its real length (FramePack's
  // batch-1 path), so sampling and decode are planned again for `text_tokens` (the longer of
  // the prompt and, with CFG, the negative prompt) instead of the 512 padded ones; their plan
  // events come again. Nothing when no plan was made or the count is the planned one.
  void plan_for_prompt(std::int64_t text_tokens);
  const MemoryPlan* plan() const { return plan_ ? plan_.get() : nullptr; }

  // Text or image encoding: `encode(device)` on the device (its weights, `weight_bytes`, held on
  // the simulated device meanwhile), on the CPU when that runs out of memory.
  void run_encoder(const std::string& phase, std::int64_t weight_bytes,
                   const std::function<void(at::Device)>& encode);

  // Given the LLaMA text encoder loaded on the host (compute device set), starts streaming its
  // modules onto the device; what it returns keeps that going (until it is destroyed, when
  // nothing of the LLaMA stays on the device).
  using LlamaPlacement = std::function<std::shared_ptr<void>(LlamaModel&)>;
  // Text encoding (phase "text"), `encode(device, place_llama)`. Low-VRAM policy on a device with
  // its own memory: first on the device with the LLaMA streamed per module (`place_llama` set:
  // the caller loads the LLaMA on the host and hands it over) and CLIP whole (`clip_bytes` held on
  // the simulated device meanwhile). High-VRAM: both whole on the device (`llama_bytes` +
  // `clip_bytes` held), `place_llama` empty. Out of memory: on the CPU. The cancel flag is
  // checked between the LLaMA's modules.
  void run_text_encoder(std::int64_t llama_bytes, std::int64_t clip_bytes,
                        const std::function<void(at::Device, const LlamaPlacement&)>& encode);

  // FramePack's start latent (posterior mode x scaling factor, host float32) from `image` (1, 3,
  // 1, H, W) in [-1, 1]: on the device, else (out of memory) on the CPU, which gives the same
  // latent. `vae_on(device)` gives the VAE on that device (on the CPU: float32); `vae_bytes` are
  // its weights (held on the simulated device meanwhile).
  at::Tensor encode_start_latent(const std::function<std::shared_ptr<Vae>(at::Device)>& vae_on,
                                 const at::Tensor& image, std::int64_t vae_bytes);

  // The transformer whose blocks the policy places and streams (until finish()).
  void attach_transformer(PackedTransformer& transformer);
  // For SectionLoopCallbacks::wrap_model: each wrap starts a section (its blocks are placed),
  // each call of the wrapped model is one step ("section k step i"), retried on OOM.
  std::function<sampling::FlowModel(sampling::FlowModel)> model_wrapper();

  // The decoder used by decode() (its weights are loaded onto the device at the first decode).
  void attach_decoder(std::shared_ptr<StreamedVaeDecoder> decoder);
  // FramePack's vae_decode: decode(latents / scaling_factor) with the job's tiling, on the host.
  at::Tensor decode(const at::Tensor& scaled_latents, double scaling_factor);

  // Releases every device copy, stops the telemetry, saves the profile. Idempotent.
  void finish();

 private:
  struct SamplingRung {
    int resident = 0;
    std::int64_t attention_chunk = 1024;
    std::string name() const;
  };
  void prepare_sampling();
  void place_transformer(int cap);  // prepare_sampling's placement, with the policy's fallback
  at::Tensor run_step(const sampling::FlowModel& model, const at::Tensor& x,
                      const at::Tensor& sigma, int section, int step);
  OomLadderHooks hooks();
  void release_host_memory();
  // Before a CPU rung: the encoder's weights in float32 (`weight_bytes` at the device's element
  // size) must fit in the host's available memory, else HostMemoryExhausted.
  void require_host_for_cpu_rung(std::int64_t weight_bytes, const std::string& what) const;
  EventSink ladder_sink(std::map<std::string, double> extra = {});
  // kActivations: `estimate` is an activation formula the profile corrects (learnt from the
  // measured ratio); kWholePhase: the plan's whole estimate (weights too), reported only.
  enum class PeakScope { kActivations, kWholePhase };
  // kReportOnly: a measurement that may read low (a streamed step: which streamed copies were
  // on the device at its peak is not known) is reported but never lowers a later estimate.
  enum class ProfileUse { kLearn, kReportOnly };
  void record_peak(const std::string& phase, std::int64_t estimate, std::int64_t measured,
                   PeakScope scope = PeakScope::kActivations, ProfileUse use = ProfileUse::kLearn);
  // After an encoder phase that ran on the device: its plan estimate next to the measured peak.
  void record_phase_peak(const std::string& phase, std::int64_t base);
  void record_sampling_peak(std::int64_t measured, ProfileUse use);
  std::int64_t allocated() const;
  std::int64_t peak() const;
  void reset_peak();
  void empty_cache();

  GovernorOptions options_;
  EventSink sink_;
  std::mutex sink_mutex_;
  const std::atomic<bool>* cancel_;
  std::chrono::steady_clock::time_point t0_;
  std::unique_ptr<MemoryProbe> probe_;
  std::int64_t budget_ = 0;
  bool memory_fraction_set_ = false;
  std::unique_ptr<ResidencyPolicy> policy_;
  std::unique_ptr<MemoryTelemetry> telemetry_;
  std::unique_ptr<MemoryPlan> plan_;
  ModelFootprint model_;
  JobShape job_;
  PeakProfile profile_;
  std::unique_ptr<TransformerResidency> residency_;
  std::vector<SamplingRung> sampling_rungs_;
  std::size_t sampling_rung_ = 0;
  int resident_cap_ = -1;             // modules; lowered by the step ladder; -1: none
  int planned_blocks_ = -1;           // resident blocks from the plan; -1: none
  AttentionKernel attention_ = AttentionKernel::kChunked;
  bool sampling_peak_recorded_ = false;  // one measured step per section
  std::int64_t attention_chunk_ = 1024;
  int section_ = 0, step_ = 0;
  std::shared_ptr<StreamedVaeDecoder> decoder_;
  DecodeContext decode_ctx_;
  std::atomic<std::int64_t> recoveries_{0};
  bool finished_ = false;
};

}  // namespace framesmith::memory
