// Deterministic random weights made in pieces: each tensor's values depend only on its name and
// the seed (not on its order, its shard, which other tensors exist or the thread count), and only
// a batch of pieces is in memory, so a 1 GB embedding table costs tens of MB of host memory.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>

#include "models/weights.h"

namespace framesmith::randmodel {

constexpr std::int64_t kPieceElements = 4 << 20;  // 16 MB of float32 per piece

// The generator seed of tensor `name` (FNV-1a of the name mixed with `seed`).
std::uint64_t tensor_seed(const std::string& name, std::uint64_t seed);

// Standard deviation of a normal-initialised tensor: 1/sqrt(fan_in), at most 0.02, so that
// activations keep their scale through 60 blocks and a forward pass stays finite.
double init_std(const ParamSpec& spec);

// Calls `sink` with consecutive flat pieces (at most kPieceElements each) of `spec`'s values as
// `dtype`, together making the whole tensor in row-major order. Pieces are made a batch at a
// time, one per LibTorch thread (host memory: threads x 16 MB), the same whatever the count.
void make_random_pieces(const ParamSpec& spec, at::ScalarType dtype, std::uint64_t seed,
                        const std::function<void(const at::Tensor&)>& sink);

}  // namespace framesmith::randmodel
