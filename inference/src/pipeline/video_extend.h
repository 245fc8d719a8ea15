// Video extension, as FramePack-Studio's "Video" (backward, original weights) and "Video F1"
// (forward, F1 weights) modes run it: the input clip's last frames are VAE-encoded as the
// history, and each section's clean-latent context is built from the clip and what was made so
// far (their video_prepare_clean_latents_and_indices / video_f1_..., edge cases included). The
// video made holds the new frames only; joining it to the clip is the caller's.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <optional>

#include "models/transformer_packed.h"
#include "models/vae.h"
#include "sampling/sample_hunyuan.h"

namespace framesmith::pipeline {

enum class ExtendDirection { kBackward = 1, kForward };

// How many of a clip's `frames` frames are encoded: the last 4 · ⌊min(frames, 108) / 4⌋ (27
// latents, the most any context reads).
std::int64_t frames_to_encode(std::int64_t frames);

// The clip (1, 3, T, H, W) in [-1, 1] encoded in batches of `batch` frames, each on its own
// (1 + ⌊(n − 1) / 4⌋ latents a batch), concatenated: posterior mode × scaling factor, float32.
at::Tensor encode_video_latents(const Vae& vae, const at::Tensor& clip, std::int64_t batch = 16,
                                const VaeTiling& tiling = {});

// One section's context. `padding`: the backward loop's latent padding of this section;
// `first_padding`: the first section's (the one nearest the clip).
sampling::SectionContext video_context(const at::Tensor& video_latents, const at::Tensor& history,
                                       int window, int padding, int first_padding,
                                       int num_cleaned_frames);
sampling::SectionContext video_f1_context(const at::Tensor& video_latents,
                                          const at::Tensor& history, int window,
                                          int num_cleaned_frames);

// The backward mode's paddings: [3, 2, ..., 2, 1, 0] above 4 sections, else n − 1 ... 0.
std::vector<int> video_paddings(int sections);

struct VideoExtendParams {
  ExtendDirection direction = ExtendDirection::kForward;
  int sections = 1;
  int latent_window = 9;
  int steps = 25;
  std::uint64_t seed = 31337;
  double gs = 10.0, cfg = 1.0, rs = 0.0;
  std::optional<double> shift;
  int num_cleaned_frames = 5;  // FramePack-Studio's "adherence to video" (its default)
  at::ScalarType sample_dtype = at::kBFloat16;
  at::Device device = at::kCPU;
  VaeTiling tiling;
};

struct VideoExtendResult {
  at::Tensor video_latents;  // the clip's, as encoded
  at::Tensor new_latents;    // the sections' latents in video order
  at::Tensor pixels;         // their pixels, blended as FramePack-Studio blends them
};

struct VideoExtendCallbacks {
  std::function<void(int section, const sampling::SectionContext&)> on_context;
  std::function<void(int section, const at::Tensor& latents)> on_sampled;
};

// `clip`: the frames to encode, (1, 3, T, H, W) in [-1, 1] (frames_to_encode of the input's last).
VideoExtendResult extend_video(PackedTransformer& transformer, const Vae& vae,
                               const at::Tensor& clip,
                               const sampling::HunyuanConditioning& conditioning,
                               const VideoExtendParams& params,
                               const VideoExtendCallbacks& callbacks = {});

}  // namespace framesmith::pipeline
