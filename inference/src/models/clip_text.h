// The CLIP text tower (transformers' `CLIPTextModel`): HunyuanVideo's `text_encoder_2`
// (CLIP ViT-L/14), whose pooler_output FramePack uses as the pooled prompt embedding. Parameter
// names are transformers' own:
//   text_model.embeddings.{token,position}_embedding, text_model.encoder.layers.N.
//   {self_attn.{q,k,v,out}_proj, layer_norm1, layer_norm2, mlp.fc1, mlp.fc2},
//   text_model.final_layer_norm
// Extra keys of a full CLIPModel checkpoint (vision tower, projections, position_ids) are ignored.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "models/weights.h"

namespace framesmith {

namespace encoder_detail {
struct PreNormLayer;
}  // namespace encoder_detail

// transformers' CLIPTextConfig fields the forward needs, with its defaults.
struct ClipTextConfig {
  std::int64_t vocab_size = 49408;
  std::int64_t hidden_size = 512;
  std::int64_t intermediate_size = 2048;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 8;
  std::int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  // 2 (the value of OpenAI-converted configs) selects the legacy pooling rule: argmax of the ids.
  std::int64_t eos_token_id = 49407;

  // Reads a CLIPTextConfig, or the "text_config" of a CLIPConfig.
  static ClipTextConfig from_json(const nlohmann::json& j);
  void validate() const;
};

// Every parameter (full checkpoint key, "text_model." included) with its shape.
std::vector<ParamSpec> clip_text_parameter_specs(const ClipTextConfig& cfg);

struct ClipTextOutput {
  at::Tensor last_hidden_state;           // [B, S, D], after final_layer_norm
  at::Tensor pooler_output;               // [B, D], at the end-of-text token
  std::vector<at::Tensor> hidden_states;  // embeddings, then each layer's output (no final norm)
};

class ClipTextModel {
 public:
  ClipTextModel(ClipTextConfig cfg, const Weights& w);  // `w` at the checkpoint root
  ~ClipTextModel();
  ClipTextModel(const ClipTextModel&) = delete;
  ClipTextModel& operator=(const ClipTextModel&) = delete;

  // input_ids: integer [B, S], S <= max_position_embeddings; attention_mask: [B, S] (nonzero =
  // token) or undefined (FramePack passes none). Causal attention as CLIP was trained.
  ClipTextOutput forward(const at::Tensor& input_ids,
                         const at::Tensor& attention_mask = at::Tensor()) const;

  // The position of each row's pooled token: the first eos_token_id, or with the legacy id 2 the
  // first maximum of the ids (CLIP's end-of-text is its largest id). A row without eos_token_id
  // pools position 0, as transformers' argmax over all-false does.
  std::vector<std::int64_t> pool_positions(const at::Tensor& input_ids) const;

  const ClipTextConfig& config() const { return cfg_; }

 private:
  ClipTextConfig cfg_;
  at::ScalarType dtype_;
  at::Device device_;
  at::Tensor token_embedding_, position_embedding_, final_ln_w_, final_ln_b_;
  std::vector<encoder_detail::PreNormLayer> layers_;
};

// Loads `folder`/config.json and the folder's safetensors; one Error lists every problem.
std::shared_ptr<ClipTextModel> load_clip_text(const std::string& folder, at::ScalarType dtype,
                                              at::Device device);

}  // namespace framesmith
