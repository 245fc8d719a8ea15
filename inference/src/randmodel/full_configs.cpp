// The hub's config.json files of the FramePack model set, as values (sources in
// docs/full-size-model-set.md), and the components' weight layouts.
#include <nlohmann/json.hpp>

#include "models/clip_text.h"
#include "models/llama.h"
#include "models/siglip.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "randmodel/full_model_set.h"

namespace framesmith::randmodel {
namespace {

using nlohmann::json;

constexpr std::uint64_t kGB = 1000ull * 1000 * 1000;  // save_pretrained's "5GB" is decimal

// SiglipVisionModel checkpoints carry the attention-pooling head, which FramePack never runs
// (it reads last_hidden_state): written for the real size, ignored by the engine's loader.
std::vector<ParamSpec> siglip_head_specs(const SiglipVisionConfig& c) {
  const std::int64_t h = c.hidden_size, i = c.intermediate_size;
  const std::string p = "vision_model.head.";
  return {{p + "probe", {1, 1, h}},
          {p + "attention.in_proj_weight", {3 * h, h}},
          {p + "attention.in_proj_bias", {3 * h}, Init::kZeros},
          {p + "attention.out_proj.weight", {h, h}},
          {p + "attention.out_proj.bias", {h}, Init::kZeros},
          {p + "layernorm.weight", {h}, Init::kOnes},
          {p + "layernorm.bias", {h}, Init::kZeros},
          {p + "mlp.fc1.weight", {i, h}},
          {p + "mlp.fc1.bias", {i}, Init::kZeros},
          {p + "mlp.fc2.weight", {h, i}},
          {p + "mlp.fc2.bias", {h}, Init::kZeros}};
}

}  // namespace

json framepack_transformer_config() {
  return {{"_class_name", "HunyuanVideoTransformer3DModelPacked"},
          {"_diffusers_version", "0.33.0.dev0"},
          {"_name_or_path", "hunyuanvideo-community/HunyuanVideo"},
          {"attention_head_dim", 128},
          {"guidance_embeds", true},
          {"has_clean_x_embedder", true},
          {"has_image_proj", true},
          {"image_proj_dim", 1152},
          {"in_channels", 16},
          {"mlp_ratio", 4.0},
          {"num_attention_heads", 24},
          {"num_layers", 20},
          {"num_refiner_layers", 2},
          {"num_single_layers", 40},
          {"out_channels", 16},
          {"patch_size", 2},
          {"patch_size_t", 1},
          {"pooled_projection_dim", 768},
          {"qk_norm", "rms_norm"},
          {"rope_axes_dim", {16, 56, 56}},
          {"rope_theta", 256.0},
          {"text_embed_dim", 4096}};
}

json hunyuan_vae_config() {
  return {{"_class_name", "AutoencoderKLHunyuanVideo"},
          {"_diffusers_version", "0.32.0.dev0"},
          {"act_fn", "silu"},
          {"block_out_channels", {128, 256, 512, 512}},
          {"down_block_types", json(std::vector<std::string>(4, "HunyuanVideoDownBlock3D"))},
          {"in_channels", 3},
          {"latent_channels", 16},
          {"layers_per_block", 2},
          {"mid_block_add_attention", true},
          {"norm_num_groups", 32},
          {"out_channels", 3},
          {"scaling_factor", 0.476986},
          {"spatial_compression_ratio", 8},
          {"temporal_compression_ratio", 4},
          {"up_block_types", json(std::vector<std::string>(4, "HunyuanVideoUpBlock3D"))}};
}

json llava_llama3_text_encoder_config() {
  return {{"architectures", {"LlamaModel"}},
          {"attention_bias", false},
          {"attention_dropout", 0.0},
          {"bos_token_id", 128000},
          {"eos_token_id", 128001},
          {"head_dim", 128},
          {"hidden_act", "silu"},
          {"hidden_size", 4096},
          {"initializer_range", 0.02},
          {"intermediate_size", 14336},
          {"max_position_embeddings", 8192},
          {"mlp_bias", false},
          {"model_type", "llama"},
          {"num_attention_heads", 32},
          {"num_hidden_layers", 32},
          {"num_key_value_heads", 8},
          {"pretraining_tp", 1},
          {"rms_norm_eps", 1e-05},
          {"rope_scaling", nullptr},
          {"rope_theta", 500000.0},
          {"tie_word_embeddings", false},
          {"torch_dtype", "float16"},
          {"transformers_version", "4.46.3"},
          {"use_cache", true},
          {"vocab_size", 128320}};
}

json clip_l_text_encoder_config() {
  return {{"architectures", {"CLIPTextModel"}},
          {"attention_dropout", 0.0},
          {"bos_token_id", 0},
          {"dropout", 0.0},
          {"eos_token_id", 2},
          {"hidden_act", "quick_gelu"},
          {"hidden_size", 768},
          {"initializer_factor", 1.0},
          {"initializer_range", 0.02},
          {"intermediate_size", 3072},
          {"layer_norm_eps", 1e-05},
          {"max_position_embeddings", 77},
          {"model_type", "clip_text_model"},
          {"num_attention_heads", 12},
          {"num_hidden_layers", 12},
          {"pad_token_id", 1},
          {"projection_dim", 768},
          {"torch_dtype", "float16"},
          {"transformers_version", "4.48.0.dev0"},
          {"vocab_size", 49408}};
}

json siglip_so400m_image_encoder_config() {
  return {{"architectures", {"SiglipVisionModel"}},
          {"attention_dropout", 0.0},
          {"hidden_act", "gelu_pytorch_tanh"},
          {"hidden_size", 1152},
          {"image_size", 384},
          {"intermediate_size", 4304},
          {"layer_norm_eps", 1e-06},
          {"model_type", "siglip_vision_model"},
          {"num_attention_heads", 16},
          {"num_channels", 3},
          {"num_hidden_layers", 27},
          {"patch_size", 14},
          {"torch_dtype", "bfloat16"},
          {"transformers_version", "4.46.2"}};
}

json siglip_preprocessor_config() {
  return {{"do_convert_rgb", nullptr},
          {"do_normalize", true},
          {"do_rescale", true},
          {"do_resize", true},
          {"image_mean", {0.5, 0.5, 0.5}},
          {"image_processor_type", "SiglipImageProcessor"},
          {"image_std", {0.5, 0.5, 0.5}},
          {"processor_class", "SiglipProcessor"},
          {"resample", 3},
          {"rescale_factor", 0.00392156862745098},
          {"size", {{"height", 384}, {"width", 384}}}};
}

std::vector<ComponentPlan> full_component_plans() {
  std::vector<ComponentPlan> plans;
  {
    // FramePackI2V_HY: bf16 in three shards (diffusers' save_pretrained default "10GB").
    json cfg = framepack_transformer_config();
    plans.push_back({"transformer", cfg,
                     transformer_parameter_specs(TransformerConfig::from_json(cfg)), at::kBFloat16,
                     "diffusion_pytorch_model", 10 * kGB, std::nullopt});
  }
  {
    // Converted from HunyuanVideo's float32 checkpoint without a dtype change.
    json cfg = hunyuan_vae_config();
    plans.push_back({"vae", cfg, vae_parameter_specs(VaeConfig::from_json(cfg)), at::kFloat,
                     "diffusion_pytorch_model", 5 * kGB, std::nullopt});
  }
  {
    // float16, saved by the conversion script with max_shard_size="5GB": four shards.
    json cfg = llava_llama3_text_encoder_config();
    plans.push_back({"text_encoder", cfg, llama_parameter_specs(LlamaConfig::from_json(cfg)),
                     at::kHalf, "model", 5 * kGB, std::nullopt});
  }
  {
    json cfg = clip_l_text_encoder_config();
    plans.push_back({"text_encoder_2", cfg,
                     clip_text_parameter_specs(ClipTextConfig::from_json(cfg)), at::kHalf, "model",
                     5 * kGB, std::nullopt});
  }
  {
    json cfg = siglip_so400m_image_encoder_config();
    const SiglipVisionConfig c = SiglipVisionConfig::from_json(cfg);
    std::vector<ParamSpec> specs = siglip_vision_parameter_specs(c);
    for (ParamSpec& s : siglip_head_specs(c)) specs.push_back(std::move(s));
    plans.push_back(
        {"image_encoder", cfg, std::move(specs), at::kBFloat16, "model", 5 * kGB, std::nullopt});
  }
  return plans;
}

}  // namespace framesmith::randmodel
