#include "models/prenorm_layer.h"

#include <cmath>

#include "models/encoder_common.h"

namespace framesmith::encoder_detail {

void bind_prenorm_layer(PreNormLayer& l, const ParamBinder& b, std::int64_t d, std::int64_t f) {
  const ParamBinder a = b.sub("self_attn");
  a.bind(l.q_w, "q_proj.weight", {d, d});
  a.bind(l.q_b, "q_proj.bias", {d}, Init::kZeros);
  a.bind(l.k_w, "k_proj.weight", {d, d});
  a.bind(l.k_b, "k_proj.bias", {d}, Init::kZeros);
  a.bind(l.v_w, "v_proj.weight", {d, d});
  a.bind(l.v_b, "v_proj.bias", {d}, Init::kZeros);
  a.bind(l.out_w, "out_proj.weight", {d, d});
  a.bind(l.out_b, "out_proj.bias", {d}, Init::kZeros);
  b.bind(l.ln1_w, "layer_norm1.weight", {d}, Init::kOnes);
  b.bind(l.ln1_b, "layer_norm1.bias", {d}, Init::kZeros);
  b.bind(l.fc1_w, "mlp.fc1.weight", {f, d});
  b.bind(l.fc1_b, "mlp.fc1.bias", {f}, Init::kZeros);
  b.bind(l.fc2_w, "mlp.fc2.weight", {d, f});
  b.bind(l.fc2_b, "mlp.fc2.bias", {d}, Init::kZeros);
  b.bind(l.ln2_w, "layer_norm2.weight", {d}, Init::kOnes);
  b.bind(l.ln2_b, "layer_norm2.bias", {d}, Init::kZeros);
}

at::Tensor prenorm_layer_forward(const PreNormLayer& l, const at::Tensor& h, const at::Tensor& keep,
                                 std::int64_t heads, double eps, const std::string& act) {
  const std::int64_t d = h.size(-1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d / heads));
  at::Tensor x = at::layer_norm(h, {d}, l.ln1_w, l.ln1_b, eps);
  const at::Tensor q = split_heads(at::linear(x, l.q_w, l.q_b), heads);
  const at::Tensor k = split_heads(at::linear(x, l.k_w, l.k_b), heads);
  const at::Tensor v = split_heads(at::linear(x, l.v_w, l.v_b), heads);
  const at::Tensor r =
      h + at::linear(merge_heads(eager_attention(q, k, v, keep, scale)), l.out_w, l.out_b);
  x = at::layer_norm(r, {d}, l.ln2_w, l.ln2_b, eps);
  x = at::linear(activation(at::linear(x, l.fc1_w, l.fc1_b), act), l.fc2_w, l.fc2_b);
  return r + x;
}

}  // namespace framesmith::encoder_detail
