// The engine's memory plan for a job, before it runs: a device peak per phase and the settings
// (chunk sizes, resident blocks, attention block) the memory governor will start from. It is what
// the `estimate` command prints and what the studio shows next to Start. Plain C++ (no torch).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith {

struct PhaseEstimate {
  std::string phase;    // "text", "image", "vae encode", "sampling", "decode"
  std::string setting;  // "chunk 8 latent frames", "12 of 60 blocks resident, attention 1024"
  std::int64_t peak_bytes = 0;  // estimated device peak, resident weights included
  bool fits = true;             // within the budget (always, without one)
  bool on_cpu = false;          // the phase does not fit and will run on the CPU instead
  std::string line;  // "decode: chunk 8 latent frames, est. 3.1 GiB peak of 6.0 GiB budget"
};

struct MemoryPlanReport {
  std::string model;          // the model set's description and fingerprint
  int width = 0, height = 0;  // the start image's bucket
  int sections = 0;
  std::int64_t largest_decode_latents = 0;
  std::int64_t weight_bytes = 0;  // all components, in the job's dtypes
  std::string residency;          // "high-vram", "low-vram", "cpu"
  std::int64_t budget_bytes = 0;  // 0: none (peaks only)
  std::vector<PhaseEstimate> phases;
  std::int64_t host_decode_bytes = 0;  // host memory the streamed decode holds
  bool corrected_by_profile = false;   // measured peaks of earlier jobs adjusted the estimates
  std::string text;                    // the whole report, as `estimate` prints it

  // The phase with the largest peak among those planned on the device; null when none.
  const PhaseEstimate* largest() const;
};

// Plans `r` (model_dir, variant, device, vram_budget_bytes, preserved_memory_bytes, resolution,
// seconds, latent_window) for a start image of `image_width` x `image_height` pixels (0: a
// square image of the resolution). Reads configs and safetensors headers only. On CUDA without a
// budget it asks the device for its size (which starts CUDA). Throws Error on a bad request or
// model folder.
MemoryPlanReport plan_job_memory(const GenerationRequest& r, int image_width = 0,
                                 int image_height = 0);

}  // namespace framesmith
