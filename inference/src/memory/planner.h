// Planning before each phase: an estimate of the phase's device peak (from the model configs,
// the resolution and the chunk size) picks the chunk sizes, resident blocks and attention block
// so that the common case never runs out of memory. Estimates are formulas first; the peaks a
// job measures are remembered per device and model in a small JSON profile and correct later
// estimates (the OOM ladder still catches what an estimate misses).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "framesmith/model_set.h"
#include "memory/chunked_decode.h"
#include "memory/residency.h"
#include "models/transformer_packed.h"
#include "models/vae.h"

namespace framesmith::memory {

// What a model folder weighs on the device, read from configs and safetensors headers only.
struct ModelFootprint {
  bool has_transformer = false;
  TransformerConfig transformer;
  std::int64_t transformer_block_bytes = 0;      // all dual + single blocks
  std::int64_t transformer_non_block_bytes = 0;  // embedders, refiner, output
  int transformer_blocks = 0;
  // Each block's bytes in execution order (dual blocks, then single blocks): a dual block of the
  // 13B model is 2.4x a single one, so what is resident (the first blocks) and what streams (the
  // largest consecutive pair) are not the average. Empty: equal blocks of the total.
  std::vector<std::int64_t> transformer_block_sizes;
  bool has_vae = false;
  VaeConfig vae;
  std::int64_t vae_encoder_bytes = 0, vae_decoder_bytes = 0;
  std::int64_t text_encoder_bytes = 0, text_encoder_2_bytes = 0, image_encoder_bytes = 0;
  // Host bytes: what the checkpoints store (their dtypes: bf16, float8, ...). The transformer and
  // the LLaMA stay memory-mapped at that size on the host of a job with a device memory, while
  // the device bytes above are those of the compute dtype.
  std::int64_t transformer_host_bytes = 0, text_encoder_host_bytes = 0;
  // The LLaMA's two largest consecutive modules (two layers: the embedding table is never
  // placed): what streaming it per layer holds on the device at once; 0 when unknown.
  std::int64_t text_encoder_stream_bytes = 0;
  std::int64_t text_hidden = 4096, clip_hidden = 768, image_hidden = 1152;
  std::int64_t text_heads = 32, clip_heads = 12, image_heads = 16;
  // The image encoder's patch count (its config's (image_size / patch_size)^2) and its input's
  // pixels (image_size^2); 0: unknown.
  std::int64_t image_tokens = 0, image_pixels = 0;
  std::int64_t transformer_element_bytes = 2, vae_element_bytes = 2, encoder_element_bytes = 2;
  bool cpu_convolution = false;  // LibTorch's CPU kernels do the work (CPU or simulated device)
  std::string fingerprint;       // identifies the model for the profile ("t3072x60-v128")
};

// `cuda`: the dtypes of a CUDA job (bf16 transformer, fp16 VAE and encoders); else float32.
ModelFootprint read_model_footprint(const ModelSet& models, bool cuda);
ModelFootprint read_model_footprint(const std::string& model_dir, bool cuda);

// Where measured peaks are kept: $FRAMESMITH_MEMORY_PROFILE, else (CUDA jobs only) the user's
// cache folder ($XDG_CACHE_HOME or ~/.cache)/framesmith/memory-profile.json; "" = none.
std::string default_profile_path(bool cuda);

// The job's shape.
struct JobShape {
  std::int64_t height = 640, width = 640;  // pixels of the start image's bucket
  int latent_window = 9;
  int sections = 1;
  // The prompt's tokens as the blocks see them: the padding is cropped (batch 1), so 512 is
  // the most; Governor::plan_for_prompt plans again with the real count once it is known.
  std::int64_t text_tokens = 512;
  // The padded length the transformer's token refiner runs on (FramePack pads to 512).
  std::int64_t padded_text_tokens = 512;
  // SigLIP 384 / 14 = 27 x 27 patches; job_shape_for takes the model set's own count.
  std::int64_t image_tokens = 729;
  bool temporal_tiles = true;  // decode as FramePack (diffusers' temporal tiles)
  // Activation-sized tensors a step cache keeps across steps: TeaCache the residual and block 0's
  // modulated input (2), MagCache the residual (1), none 0.
  int step_cache_tensors = 0;
  // Latent frames of the largest decode: the original loop decodes at most 2 windows + 1.
  std::int64_t max_decode_latents() const;
  std::int64_t sampling_tokens(const TransformerConfig& cfg) const;
};

// A job shape with what the model set decides (the image encoder's token count), the rest default.
JobShape job_shape_for(const ModelFootprint& model);

// One phase's plan: "decode: chunk 8 latent frames, est. 3.1 GiB peak of 6.0 GiB budget".
struct PhasePlan {
  std::string phase;          // "text", "image", "vae encode", "sampling", "decode"
  std::string setting;        // "chunk 8 latent frames", "12 of 40 blocks resident, attention 1024"
  std::int64_t estimate = 0;  // device peak including the resident weights
  std::int64_t budget = 0;    // 0: no device budget (CPU)
  bool fits = true;
  std::string line() const;
  Event event(double t_s) const;  // the `plan` event
};

struct MemoryPlan {
  std::string residency;  // "high-vram", "low-vram", "cpu"
  std::int64_t budget = 0;
  std::vector<PhasePlan> phases;
  std::vector<DecodeRung> decode_rungs;  // the decode ladder, each rung smaller than the last
  std::size_t decode_rung = 0;           // where decoding starts
  int resident_blocks = 0;               // transformer blocks kept on the device while sampling
  std::int64_t attention_chunk = 1024;   // transformer attention queries per block
  std::int64_t host_bytes = 0;           // host memory the streamed decode holds
  const PhasePlan* find(const std::string& phase) const;
  std::string text() const;  // one line per phase
};

// ModelFootprint::transformer_block_sizes, or equal blocks of the total when it is empty.
std::vector<std::int64_t> block_sizes(const ModelFootprint& m);

// How the transformer's attention runs (models/attention.cpp), which decides what it holds:
//   kChunked   upcast q/k/v and one block of (queries x keys) scores and softmax (LibTorch 1.x);
//   kFusedCuda SDPA's flash / memory-efficient kernels: the output and its log-sum-exp;
//   kFusedCpu  SDPA's CPU flash kernel: that, plus one (query block x key block) float32 buffer
//              per thread.
enum class AttentionKernel { kChunked, kFusedCuda, kFusedCpu };
// The kernel this build of LibTorch runs on a CUDA device (`cuda`) or on the CPU.
AttentionKernel attention_kernel_for(bool cuda);

// Device peaks of single phases (bytes; activations only unless the name says so).
std::int64_t estimate_sampling_activations(const TransformerConfig& cfg, std::int64_t tokens,
                                           std::int64_t element_bytes, std::int64_t attention_chunk,
                                           AttentionKernel attention, int step_cache_tensors = 0,
                                           std::int64_t padded_text_tokens = 0);
std::int64_t estimate_vae_encode_activations(const VaeConfig& cfg, std::int64_t height,
                                             std::int64_t width, std::int64_t element_bytes,
                                             bool cpu_convolution);
std::int64_t estimate_encoder_activations(std::int64_t tokens, std::int64_t hidden,
                                          std::int64_t heads, std::int64_t element_bytes);

// Measured peaks, remembered: key -> the largest measured / estimated ratio seen.
class PeakProfile {
 public:
  // A missing or unreadable file gives an empty profile (a profile is only ever a hint).
  static PeakProfile load(const std::string& path);
  // Written atomically (temporary file + rename); errors are ignored, for the same reason.
  void save(const std::string& path) const;
  // Factor to multiply an estimate by (1 when nothing was measured), within [0.5, 8].
  double correction(const std::string& key) const;
  void record(const std::string& key, std::int64_t estimate, std::int64_t measured);
  bool empty() const { return entries_.empty(); }

  struct Entry {
    double ratio = 1.0;
    std::int64_t samples = 0;
    std::int64_t last_estimate = 0, last_measured = 0;
  };
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  std::map<std::string, Entry> entries_;
};

// The profile key of a phase kind ("decode", "sampling", "vae encode") for this device and model.
std::string profile_key(const std::string& device_kind, const std::string& phase,
                        const ModelFootprint& model);

// Plans every phase of a job for `budget` bytes (0: no device budget).
MemoryPlan make_memory_plan(const ModelFootprint& model, const JobShape& job, std::int64_t budget,
                            const ResidencyLimits& limits, const PeakProfile& profile,
                            const std::string& device_kind, AttentionKernel attention);

}  // namespace framesmith::memory
