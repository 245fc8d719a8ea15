// The bookkeeping of FramePack's section loops (demo_gradio.py / demo_gradio_f1.py worker) that
// needs no model: how many sections, the reverse padding schedule, the latent position indices of
// each section, frame counts, and soft_append_bcthw (diffusers_helper/utils.py).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace framesmith::pipeline {

// max(round(seconds * 30 / (window * 4)), 1) with Python's round (halves to even).
int total_latent_sections(double total_seconds, int latent_window_size);

// The original loop's latent paddings, first section first: reversed(range(n)), or
// [3] + [2] * (n - 3) + [1, 0] when n > 4. The section with padding 0 is the last.
std::vector<int> latent_paddings(int num_sections);

// Position indices (1, k) int64 of one section's packed inputs, as FramePack splits
// arange(...).unsqueeze(0).
struct SectionIndices {
  at::Tensor latent_indices;           // the `window` frames being generated
  at::Tensor clean_latent_indices;     // the two 1x context frames
  at::Tensor clean_latent_indices_2x;  // two frames, 2x compressed
  at::Tensor clean_latent_indices_4x;  // sixteen frames, 4x compressed
};

// Original loop: arange split as [1 pre, padding*window blank, window, 1 post, 2, 16]; the 1x
// context is [pre, post].
SectionIndices original_section_indices(int latent_padding, int latent_window_size);

// F1 loop: arange split as [1 start, 16 (4x), 2 (2x), 1 (1x), window]; the 1x context is
// [start, 1x].
SectionIndices f1_section_indices(int latent_window_size);

// Pixel frames a causal VAE decode gives for `latent_frames` latents: 1 + 4 * (T - 1).
std::int64_t pixel_frames_for_latents(std::int64_t latent_frames);

// diffusers_helper.utils.soft_append_bcthw: `current` appended after `history` along time, the
// last `overlap` frames of history blended linearly (weight 1 -> 0) into the first `overlap`
// frames of current. overlap <= 0 concatenates. Result has history's dtype/device and
// T_history + T_current - max(overlap, 0) frames.
at::Tensor soft_append_bcthw(const at::Tensor& history, const at::Tensor& current,
                             std::int64_t overlap);

}  // namespace framesmith::pipeline
