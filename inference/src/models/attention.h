// Scaled dot-product attention for the transformer: the fused kernel where this LibTorch has one,
// otherwise an exact query-chunked softmax(QK^T / sqrt(d)) V whose peak memory is bounded by
// (query chunk x keys) per head instead of (sequence x sequence).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace framesmith {

// q: [B, heads, Sq, D], k/v: [B, heads, Sk, D] -> [B, heads, Sq, D] in q's dtype.
// `mask` (optional, bool, true = attend) broadcasts to [B, heads, Sq, Sk]; its size-1 dims are
// broadcast. `query_chunk` (> 0) bounds the queries per block: per matmul block in the chunked
// path, per fused-kernel call with SDPA (one call when it covers all queries).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     std::int64_t query_chunk, const at::Tensor& mask = at::Tensor());

// The chunked path alone (used where no fused kernel exists, and by tests on every LibTorch).
// Half-precision inputs are computed in float32, as the math reference does.
at::Tensor attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             std::int64_t query_chunk, const at::Tensor& mask = at::Tensor());

}  // namespace framesmith
