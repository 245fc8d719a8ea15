// VAE decoding in bounded device memory, equal to the unchunked decode at every chunk size.
//
// Why not cut the latents into chunks and decode each: the HunyuanVideo VAE is causal in time
// (each chunk's first latent would decode to 1 frame instead of 4), and, worse, every GroupNorm
// normalises over ALL frames (and the mid-block attention sees all earlier frames), so a chunk
// decoded alone sees other statistics and the seams show (diffusers' overlapping temporal tiles
// land at ~34 dB PSNR from the whole decode).
//
// Instead the decoder runs layer by layer (stage by stage) over host-resident activations, each
// stage in chunks of frames (and, at the smallest settings, bands of rows) on the device:
//  - a causal 3x3x3 convolution's chunk reads its 2 previous frames and its neighbouring rows from
//    the host activation (replicate padding only at the true borders, as the whole decode does),
//    nearest upsampling is the same index mapping, so every chunk computes exactly the whole
//    decode's values for its frames;
//  - GroupNorm statistics are accumulated over all chunks of a stage's output (Chan's parallel
//    mean/variance) before the next stage normalises with them;
//  - the mid-block attention computes keys and values of all frames first, then each chunk of
//    query frames attends to the keys of its own and earlier frames.
// The result equals Vae::decode_tile up to float rounding (the same operations on the same
// values; only summation order inside kernels may differ). Device memory per chunk shrinks with
// the chunk; the price is host memory (about two activations of the largest stage) and one
// host<->device copy of each stage's input and output.
//
// An out-of-memory error inside a chunk moves the ladder to the next smaller setting (16 -> 8 ->
// 4 -> 2 -> 1 latent frames, then 1 frame in 2, 4, 8, 16 row bands) and redoes that same chunk;
// finished stages and chunks are kept. Each recovery is an `oom_recovered` event.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framesmith/events.h"
#include "memory/oom_retry.h"
#include "memory/residency.h"
#include "models/vae.h"

namespace framesmith::memory {

struct DecodeRung {
  std::int64_t latent_frames = 16;  // frames per chunk, in latent frames (a stage at 4x time
                                    // resolution takes 4x as many of its own frames)
  std::int64_t row_bands = 1;       // each chunk split into this many bands of rows
  std::string name() const;         // "chunk 16", "chunk 1 in 4 bands"
};

// 16, 8, 4, 2, 1 latent frames, then 1 frame in 2, 4, 8, 16 row bands.
std::vector<DecodeRung> default_decode_ladder();

// The state a decode carries across chunks and stages (and across decodes of one job).
struct DecodeContext {
  ComputeDevice device;
  std::vector<DecodeRung> rungs = default_decode_ladder();
  std::size_t rung = 0;  // current setting; only moves down (sticky for the rest of the job)
  std::function<void(const Event&)> on_event;  // oom_recovered events
  OomLadderHooks hooks;                        // probe / empty_cache / clock for those events
  const std::atomic<bool>* cancel = nullptr;   // checked before each chunk
  std::int64_t chunks_done = 0;                // numbers the "decode chunk j" phases
  // Bound on the mid-block attention's score matrix per query block (elements) at 16 latent
  // frames; smaller chunks use proportionally less.
  std::int64_t attention_score_elements = std::int64_t{1} << 24;
};

class StreamedVaeDecoder {
 public:
  // `vae_weights`: the VAE folder's weights (keys "decoder.*", "post_quant_conv.*"), on the host.
  StreamedVaeDecoder(const VaeConfig& cfg, const Weights& vae_weights);
  ~StreamedVaeDecoder();
  StreamedVaeDecoder(const StreamedVaeDecoder&) = delete;
  StreamedVaeDecoder& operator=(const StreamedVaeDecoder&) = delete;

  // Decoder weights onto the device / back to the host copies.
  void load(const ComputeDevice& device);
  void unload();
  bool loaded() const { return loaded_; }
  std::int64_t weight_bytes() const;
  const VaeConfig& config() const { return cfg_; }
  at::ScalarType dtype() const { return dtype_; }

  // Vae::decode_tile(z): z UNSCALED latents [B, latent, T, h, w] -> [B, out, 1 + 4 (T - 1), 8h,
  // 8w], on the host, in the weights' dtype. On a device with its own memory the weights must be
  // loaded.
  at::Tensor decode_tile(const at::Tensor& z, DecodeContext& ctx) const;
  // Vae::decode(z, tiling): with tiling.temporal, diffusers' temporal tiles (each one streamed,
  // joined by VaeTemporalAssembler: FramePack's output); without, the whole decode. Spatial
  // tiling is not offered (row bands do its job exactly): Error when asked for.
  at::Tensor decode(const at::Tensor& z, const VaeTiling& tiling, DecodeContext& ctx) const;

 private:
  struct Impl;
  VaeConfig cfg_;
  at::ScalarType dtype_;
  std::unique_ptr<Impl> impl_;
  bool loaded_ = false;
};

// Shapes of one decode, for estimates.
struct DecodeShape {
  std::int64_t batch = 1;
  std::int64_t latent_frames = 1;
  std::int64_t latent_height = 1, latent_width = 1;
  std::int64_t element_bytes = 4;  // of the VAE's dtype
  bool cpu_convolution = true;     // LibTorch's CPU convolutions (also the simulated device)
};

// Estimated device peak of StreamedVaeDecoder::decode_tile at `rung`, weights excluded (bytes).
std::int64_t estimate_decode_tile_peak(const VaeConfig& cfg, const DecodeShape& shape,
                                       const DecodeRung& rung);
// The same for decode(z, tiling): the largest of its tiles.
std::int64_t estimate_decode_peak(const VaeConfig& cfg, const DecodeShape& shape,
                                  const DecodeRung& rung, bool temporal_tiles);
// Host bytes the streamed decode holds (activations of the largest stages).
std::int64_t estimate_decode_host_bytes(const VaeConfig& cfg, const DecodeShape& shape,
                                        bool temporal_tiles);
// Decoder weight bytes in `dtype`.
std::int64_t decoder_weight_bytes(const VaeConfig& cfg, at::ScalarType dtype);

}  // namespace framesmith::memory
