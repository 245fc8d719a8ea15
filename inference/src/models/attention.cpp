#include "models/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "compat/torch_compat.h"
#include "framesmith/error.h"

namespace framesmith {
namespace {

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  std::int64_t query_chunk, const at::Tensor& mask) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) throw Error("attention: q, k, v must be 4-D");
  if (k.sizes() != v.sizes() || q.size(0) != k.size(0) || q.size(1) != k.size(1) ||
      q.size(3) != k.size(3)) {
    std::ostringstream o;
    o << "attention: incompatible shapes q " << q.sizes() << ", k " << k.sizes() << ", v "
      << v.sizes();
    throw Error(o.str());
  }
  if (query_chunk <= 0) throw Error("attention: query_chunk must be positive");
  if (mask.defined() && (mask.scalar_type() != at::kBool || mask.dim() != 4))
    throw Error("attention: mask must be a 4-D bool tensor");
}

// Runs `per_chunk(q_chunk, mask_chunk)` on blocks of at most `query_chunk` queries and writes
// each result into its rows of one output in q's dtype. Exact: a query's output row depends on
// its own scores only. The mask is narrowed with its queries unless it broadcasts over them.
template <typename PerChunk>
at::Tensor by_query_chunks(const at::Tensor& q, std::int64_t query_chunk, const at::Tensor& mask,
                           PerChunk per_chunk) {
  const std::int64_t sq = q.size(2);
  const bool mask_per_query = mask.defined() && mask.size(2) != 1;
  at::Tensor out = at::empty(q.sizes(), q.options());
  for (std::int64_t start = 0; start < sq; start += query_chunk) {
    const std::int64_t len = std::min(query_chunk, sq - start);
    const at::Tensor m = mask_per_query ? mask.narrow(2, start, len) : mask;
    out.narrow(2, start, len).copy_(per_chunk(q.narrow(2, start, len), m));
  }
  return out;
}

}  // namespace

at::Tensor attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             std::int64_t query_chunk, const at::Tensor& mask) {
  check_inputs(q, k, v, query_chunk, mask);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  // Low-precision inputs are widened once (keys/values are O(S), not O(S^2)).
  const bool widen = q.scalar_type() != at::kFloat && q.scalar_type() != at::kDouble;
  const at::Tensor kt = (widen ? k.to(at::kFloat) : k).transpose(-2, -1);
  const at::Tensor vf = widen ? v.to(at::kFloat) : v;
  return by_query_chunks(q, query_chunk, mask, [&](at::Tensor qc, const at::Tensor& m) {
    if (widen) qc = qc.to(at::kFloat);
    at::Tensor w = at::matmul(qc, kt) * scale;
    if (m.defined()) w.masked_fill_(m.logical_not(), -std::numeric_limits<double>::infinity());
    return at::matmul(at::softmax(w, -1), vf);
  });
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     std::int64_t query_chunk, const at::Tensor& mask) {
#if FRAMESMITH_HAS_SDPA
  check_inputs(q, k, v, query_chunk, mask);
  auto sdpa = [&](const at::Tensor& qc, const at::Tensor& m) {
    c10::optional<at::Tensor> opt_mask;
    if (m.defined()) opt_mask = m;
    return at::scaled_dot_product_attention(qc, k, v, opt_mask, 0.0, false);
  };
  if (query_chunk >= q.size(2)) return sdpa(q, mask);
  // The OOM ladder's smaller query chunks mean something here too: the fused kernels' workspace,
  // and the (Sq x Sk) scores of the math kernel SDPA falls back to for some masks and dtypes,
  // shrink with the queries per call.
  return by_query_chunks(q, query_chunk, mask, sdpa);
#else
  return attention_chunked(q, k, v, query_chunk, mask);
#endif
}

}  // namespace framesmith
