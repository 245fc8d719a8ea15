#include "randmodel/random_weights.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace framesmith::randmodel {

std::uint64_t tensor_seed(const std::string& name, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  h ^= seed + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  // splitmix64's finaliser: nearby names get unrelated generator states.
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

double init_std(const ParamSpec& spec) {
  std::int64_t fan_in = 1;
  for (std::size_t i = 1; i < spec.shape.size(); ++i) fan_in *= spec.shape[i];
  if (spec.shape.size() < 2 || fan_in <= 0) return 0.02;
  return std::min(0.02, 1.0 / std::sqrt(static_cast<double>(fan_in)));
}

namespace {

// Piece `k` of `spec`: its own generator (seeded from the tensor's seed and k), so pieces can be
// made in parallel and the values do not depend on the thread count.
at::Tensor make_piece(const ParamSpec& spec, std::int64_t k, std::int64_t n, std::uint64_t seed,
                      at::ScalarType dtype) {
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  switch (spec.init) {
    case Init::kOnes:
      return at::ones({n}, opts.dtype(dtype));
    case Init::kZeros:
      return at::zeros({n}, opts.dtype(dtype));
    case Init::kNormal:
      break;
  }
  at::Generator gen =
      at::detail::createCPUGenerator(tensor_seed(spec.name + "#" + std::to_string(k), seed));
  return at::randn({n}, gen, opts).mul_(init_std(spec)).to(dtype);
}

}  // namespace

void make_random_pieces(const ParamSpec& spec, at::ScalarType dtype, std::uint64_t seed,
                        const std::function<void(const at::Tensor&)>& sink) {
  std::int64_t numel = 1;
  for (std::int64_t d : spec.shape) numel *= d;
  const std::int64_t pieces = (numel + kPieceElements - 1) / kPieceElements;
  // One batch of pieces per round, one piece per thread: host memory holds one batch.
  const std::int64_t batch = std::max(1, at::get_num_threads());
  std::vector<at::Tensor> made(static_cast<std::size_t>(batch));
  for (std::int64_t first = 0; first < pieces; first += batch) {
    const std::int64_t count = std::min(batch, pieces - first);
    at::parallel_for(0, count, 1, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const std::int64_t k = first + i, begin = k * kPieceElements;
        made[i] = make_piece(spec, k, std::min(kPieceElements, numel - begin), seed, dtype);
      }
    });
    for (std::int64_t i = 0; i < count; ++i) {
      sink(made[i]);
      made[i] = at::Tensor();
    }
  }
}

}  // namespace framesmith::randmodel
