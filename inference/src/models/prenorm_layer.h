// The pre-norm transformer encoder layer CLIP's text tower and SigLIP's vision tower share
// (transformers' CLIPEncoderLayer / SiglipEncoderLayer): layer_norm1 -> self_attn (q, k, v,
// out_proj, all with biases) -> residual, layer_norm2 -> mlp (fc1, activation, fc2) -> residual.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "models/param_binder.h"

namespace framesmith::encoder_detail {

struct PreNormLayer {
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b;
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

// Binds the layer's checkpoint keys (relative to `b`, e.g. "encoder.layers.3").
void bind_prenorm_layer(PreNormLayer& l, const ParamBinder& b, std::int64_t hidden,
                        std::int64_t intermediate);

// One layer on h [B, S, hidden]; `keep` is a boolean attention mask broadcastable to
// [B, heads, S, S] (true = attend), or undefined for full attention.
at::Tensor prenorm_layer_forward(const PreNormLayer& l, const at::Tensor& h, const at::Tensor& keep,
                                 std::int64_t heads, double layer_norm_eps,
                                 const std::string& activation_name);

}  // namespace framesmith::encoder_detail
