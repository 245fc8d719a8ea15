// The SigLIP vision tower (transformers' `SiglipVisionModel`): FramePack's `image_encoder` (the
// SigLIP so400m of Flux Redux), whose last_hidden_state conditions the transformer on the start
// image. Parameter names are transformers' own:
//   vision_model.embeddings.{patch_embedding (conv), position_embedding},
//   vision_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, layer_norm2,
//   mlp.fc1, mlp.fc2}, vision_model.post_layernorm
// The attention-pooling head (vision_model.head.*) is in real checkpoints but not needed for
// last_hidden_state: its keys are ignored, as are a full SiglipModel's text-tower keys.
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

// transformers' SiglipVisionConfig fields the forward needs, with its defaults.
struct SiglipVisionConfig {
  std::int64_t hidden_size = 768;
  std::int64_t intermediate_size = 3072;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t num_channels = 3;
  std::int64_t image_size = 224;
  std::int64_t patch_size = 16;
  std::string hidden_act = "gelu_pytorch_tanh";
  double layer_norm_eps = 1e-6;

  // Reads a SiglipVisionConfig, or the "vision_config" of a SiglipConfig.
  static SiglipVisionConfig from_json(const nlohmann::json& j);
  void validate() const;
  std::int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

// Every parameter the forward reads (full checkpoint key, "vision_model." included).
std::vector<ParamSpec> siglip_vision_parameter_specs(const SiglipVisionConfig& cfg);

class SiglipVisionModel {
 public:
  SiglipVisionModel(SiglipVisionConfig cfg, const Weights& w);  // `w` at the checkpoint root
  ~SiglipVisionModel();
  SiglipVisionModel(const SiglipVisionModel&) = delete;
  SiglipVisionModel& operator=(const SiglipVisionModel&) = delete;

  // pixel_values: [B, num_channels, image_size, image_size] (the preprocessor's output), any
  // floating dtype -> last_hidden_state [B, num_patches, hidden_size] after post_layernorm.
  at::Tensor forward(const at::Tensor& pixel_values) const;

  const SiglipVisionConfig& config() const { return cfg_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

 private:
  SiglipVisionConfig cfg_;
  at::ScalarType dtype_;
  at::Device device_;
  at::Tensor patch_w_, patch_b_, position_embedding_, post_ln_w_, post_ln_b_;
  std::vector<encoder_detail::PreNormLayer> layers_;
};

// Loads `folder`/config.json and the folder's safetensors; one Error lists every problem.
std::shared_ptr<SiglipVisionModel> load_siglip_vision(const std::string& folder,
                                                      at::ScalarType dtype, at::Device device);

}  // namespace framesmith
