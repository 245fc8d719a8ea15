// 3-D rotary position embedding of the packed HunyuanVideo transformer: per-axis frequencies for
// (frame index, row, column), the frame axis driven by explicit frame indices so that clean
// context latents can sit at any position of the video.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>

namespace framesmith::rope {

// cos/sin table [B, 2 * sum(axes_dim), T, height, width] (float32): channels are
// [cos_t, cos_y, cos_x, sin_t, sin_y, sin_x], each frequency repeated twice (interleaved pairs).
// `frame_indices`: [B, T] (any numeric dtype).
at::Tensor frequencies(const at::Tensor& frame_indices, std::int64_t height, std::int64_t width,
                       const std::array<std::int64_t, 3>& axes_dim, double theta);

// Pads dims 2..4 of a 5-D tensor at their end, by replicating the last slice, to multiples of
// `kernel` (FramePack's pad_for_3d_conv).
at::Tensor pad_replicate_3d(const at::Tensor& x, const std::array<std::int64_t, 3>& kernel);

// The table of a coarser patch grid: replicate-pad, then average over `kernel` blocks.
at::Tensor downsample(const at::Tensor& freqs, const std::array<std::int64_t, 3>& kernel);

// [B, C, T, H, W] -> [B, T*H*W, C] (token order t, h, w).
at::Tensor to_tokens(const at::Tensor& x);

// Rotates x [B, S, heads, D] by the table `freqs` [B, S, 2D] (cos then sin); computed in float32
// and returned in x's dtype.
at::Tensor apply(const at::Tensor& x, const at::Tensor& freqs);

}  // namespace framesmith::rope
