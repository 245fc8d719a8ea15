#include "pipeline/section_schedule.h"

#include <framesmith/error.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

namespace framesmith::pipeline {
namespace {

void check_window(int latent_window_size) {
  if (latent_window_size < 1) {
    throw Error("latent window size must be >= 1, got " + std::to_string(latent_window_size));
  }
}

std::vector<at::Tensor> arange_split(const std::vector<std::int64_t>& sizes) {
  std::int64_t total = 0;
  for (std::int64_t s : sizes) total += s;
  const at::Tensor idx = at::arange(total, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
  std::vector<at::Tensor> parts = at::split_with_sizes(idx, sizes, 1);
  for (auto& p : parts) p = p.contiguous();
  return parts;
}

}  // namespace

int total_latent_sections(double total_seconds, int latent_window_size) {
  check_window(latent_window_size);
  if (!(total_seconds >= 0.0) || !std::isfinite(total_seconds)) {
    throw Error("video length must be a finite number of seconds >= 0, got " +
                std::to_string(total_seconds));
  }
  const double sections = total_seconds * 30.0 / (latent_window_size * 4.0);
  // Python 3 round(): nearest, halves to even.
  double rounded = std::round(sections);
  if (std::fabs(sections - std::trunc(sections)) == 0.5) rounded = 2.0 * std::round(sections / 2.0);
  return static_cast<int>(std::max(rounded, 1.0));
}

std::vector<int> latent_paddings(int num_sections) {
  if (num_sections < 1) {
    throw Error("number of sections must be >= 1, got " + std::to_string(num_sections));
  }
  std::vector<int> p;
  if (num_sections > 4) {
    // FramePack repeats padding 2 rather than counting down further: it looks better.
    p.push_back(3);
    p.insert(p.end(), static_cast<std::size_t>(num_sections - 3), 2);
    p.push_back(1);
    p.push_back(0);
  } else {
    for (int i = num_sections - 1; i >= 0; --i) p.push_back(i);
  }
  return p;
}

SectionIndices original_section_indices(int latent_padding, int latent_window_size) {
  check_window(latent_window_size);
  if (latent_padding < 0) {
    throw Error("latent padding must be >= 0, got " + std::to_string(latent_padding));
  }
  const std::int64_t w = latent_window_size;
  const auto parts = arange_split({1, latent_padding * w, w, 1, 2, 16});
  SectionIndices s;
  s.latent_indices = parts[2];
  s.clean_latent_indices = at::cat({parts[0], parts[3]}, 1);
  s.clean_latent_indices_2x = parts[4];
  s.clean_latent_indices_4x = parts[5];
  return s;
}

SectionIndices f1_section_indices(int latent_window_size) {
  check_window(latent_window_size);
  const auto parts = arange_split({1, 16, 2, 1, latent_window_size});
  SectionIndices s;
  s.clean_latent_indices_4x = parts[1];
  s.clean_latent_indices_2x = parts[2];
  s.clean_latent_indices = at::cat({parts[0], parts[3]}, 1);
  s.latent_indices = parts[4];
  return s;
}

std::int64_t pixel_frames_for_latents(std::int64_t latent_frames) {
  return latent_frames < 1 ? 0 : 1 + 4 * (latent_frames - 1);
}

at::Tensor soft_append_bcthw(const at::Tensor& history, const at::Tensor& current,
                             std::int64_t overlap) {
  if (overlap <= 0) return at::cat({history, current.to(history)}, 2);
  if (history.dim() != 5 || current.dim() != 5 || history.size(2) < overlap ||
      current.size(2) < overlap) {
    std::ostringstream o;
    o << "soft_append: both videos must be (B, C, T, H, W) with at least " << overlap
      << " frames, got history " << history.sizes() << " and current " << current.sizes();
    throw Error(o.str());
  }
  const at::Tensor weights =
      at::linspace(1.0, 0.0, overlap, history.options()).view({1, 1, -1, 1, 1});
  const std::int64_t th = history.size(2);
  const at::Tensor blended = weights * history.slice(2, th - overlap, th) +
                             at::rsub(weights, 1) * current.slice(2, 0, overlap);
  const at::Tensor out = at::cat(
      {history.slice(2, 0, th - overlap), blended, current.slice(2, overlap, current.size(2))}, 2);
  return out.to(history);
}

}  // namespace framesmith::pipeline
