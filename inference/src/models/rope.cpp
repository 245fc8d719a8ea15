#include "models/rope.h"

#include <vector>

#include "framesmith/error.h"

namespace framesmith::rope {
namespace {

// cos and sin of one axis: [dim, T, H, W] each, for positions `pos` [T, H, W].
std::pair<at::Tensor, at::Tensor> axis_frequencies(std::int64_t dim, const at::Tensor& pos,
                                                   double theta) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(pos.device());
  // Same op sequence as the reference so that float32 rounding agrees: theta ** (i / dim).
  const at::Tensor exponent = at::arange(0, dim, 2, f32).slice(0, 0, dim / 2) / dim;
  const at::Tensor inv = at::reciprocal(at::pow(theta, exponent));
  const at::Tensor angles =
      at::outer(inv, pos.reshape(-1)).unflatten(-1, pos.sizes()).repeat_interleave(2, 0);
  return {angles.cos(), angles.sin()};
}

at::Tensor frequencies_one(const at::Tensor& frames, std::int64_t height, std::int64_t width,
                           const std::array<std::int64_t, 3>& axes_dim, double theta) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(frames.device());
  const std::vector<at::Tensor> grid = at::meshgrid(
      {frames.to(at::kFloat), at::arange(0, height, f32), at::arange(0, width, f32)}, "ij");
  std::vector<at::Tensor> cos, sin;
  for (int a = 0; a < 3; ++a) {
    auto cs = axis_frequencies(axes_dim[a], grid[a], theta);
    cos.push_back(cs.first);
    sin.push_back(cs.second);
  }
  return at::cat({cos[0], cos[1], cos[2], sin[0], sin[1], sin[2]}, 0);
}

}  // namespace

at::Tensor frequencies(const at::Tensor& frame_indices, std::int64_t height, std::int64_t width,
                       const std::array<std::int64_t, 3>& axes_dim, double theta) {
  if (frame_indices.dim() != 2) throw Error("rope: frame indices must be [B, T]");
  std::vector<at::Tensor> per_batch;
  for (std::int64_t b = 0; b < frame_indices.size(0); ++b)
    per_batch.push_back(frequencies_one(frame_indices[b], height, width, axes_dim, theta));
  return at::stack(per_batch, 0);
}

at::Tensor pad_replicate_3d(const at::Tensor& x, const std::array<std::int64_t, 3>& kernel) {
  at::Tensor y = x;
  for (int a = 0; a < 3; ++a) {
    const std::int64_t dim = 2 + a, n = y.size(dim);
    const std::int64_t pad = (kernel[a] - n % kernel[a]) % kernel[a];
    if (pad == 0) continue;
    std::vector<std::int64_t> reps(y.dim(), -1);
    reps[dim] = pad;
    y = at::cat({y, y.narrow(dim, n - 1, 1).expand(reps)}, dim);
  }
  return y;
}

at::Tensor downsample(const at::Tensor& freqs, const std::array<std::int64_t, 3>& kernel) {
  const std::vector<std::int64_t> k(kernel.begin(), kernel.end());
  return at::avg_pool3d(pad_replicate_3d(freqs, kernel), k, k);
}

at::Tensor to_tokens(const at::Tensor& x) {
  return x.flatten(2).transpose(1, 2);
}

at::Tensor apply(const at::Tensor& x, const at::Tensor& freqs) {
  const std::int64_t d = x.size(-1);
  const at::Tensor f = freqs.unsqueeze(-2);  // [B, S, 1, 2D]: same table for every head
  const at::Tensor cos = f.narrow(-1, 0, d), sin = f.narrow(-1, d, d);
  // Pairs (re, im) -> (-im, re): the rotation by 90 degrees of each interleaved pair.
  const at::Tensor pairs = x.unflatten(-1, {d / 2, 2});
  const at::Tensor rotated = at::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(3);
  return (x.to(at::kFloat) * cos + rotated.to(at::kFloat) * sin).to(x.scalar_type());
}

}  // namespace framesmith::rope
