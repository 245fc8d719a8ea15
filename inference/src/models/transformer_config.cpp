// TransformerConfig parsing/validation and the checkpoint layout (specs) of the packed transformer.
#include <cmath>
#include <cstdint>
#include <string>

#include "framesmith/error.h"
#include "models/transformer_packed.h"
#include "models/transformer_params.h"

namespace framesmith {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw Error("transformer config: \"" + key + "\" " + why);
}

void read_int(const json& j, const std::string& key, std::int64_t& out) {
  if (!j.contains(key) || j[key].is_null()) return;
  const json& v = j[key];
  // 2^63 and above arrive as unsigned: reported as they are, not wrapped to a negative number.
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    bad(key, "is far too large, got " + v.dump());
  } else if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
  } else if (v.is_number_float() && std::abs(v.get<double>()) < 9.0e15 &&
             v.get<double>() == std::floor(v.get<double>())) {
    out = static_cast<std::int64_t>(v.get<double>());
  } else {
    bad(key, "must be an integer, got " + v.dump());
  }
}

void read_double(const json& j, const std::string& key, double& out) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_number()) bad(key, "must be a number, got " + j[key].dump());
  out = j[key].get<double>();
}

void read_bool(const json& j, const std::string& key, bool& out) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_boolean()) bad(key, "must be true or false, got " + j[key].dump());
  out = j[key].get<bool>();
}

void read_string(const json& j, const std::string& key, std::string& out) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_string()) bad(key, "must be a string, got " + j[key].dump());
  out = j[key].get<std::string>();
}

void at_least(const std::string& key, std::int64_t v, std::int64_t min) {
  if (v < min) bad(key, "must be at least " + std::to_string(min) + ", got " + std::to_string(v));
}

// Upper bounds far above any real checkpoint (FramePack: 20 + 40 blocks, 3072 wide): a config
// past them is damaged or hostile, and would otherwise make millions of tensor specs.
void at_most(const std::string& key, std::int64_t v, std::int64_t max) {
  if (v > max) bad(key, "must be at most " + std::to_string(max) + ", got " + std::to_string(v));
}

void validate(const TransformerConfig& c) {
  constexpr std::int64_t kMaxLayers = 1024, kMaxWidth = 1 << 16;
  at_most("num_layers", c.num_layers, kMaxLayers);
  at_most("num_single_layers", c.num_single_layers, kMaxLayers);
  at_most("num_refiner_layers", c.num_refiner_layers, kMaxLayers);
  for (const auto& [key, v] : {std::pair<const char*, std::int64_t>{"in_channels", c.in_channels},
                               {"out_channels", c.out_channels},
                               {"num_attention_heads", c.num_attention_heads},
                               {"attention_head_dim", c.attention_head_dim},
                               {"patch_size", c.patch_size},
                               {"patch_size_t", c.patch_size_t},
                               {"text_embed_dim", c.text_embed_dim},
                               {"pooled_projection_dim", c.pooled_projection_dim},
                               {"image_proj_dim", c.image_proj_dim}}) {
    at_most(key, v, kMaxWidth);
  }
  if (!(c.mlp_ratio <= 64))
    bad("mlp_ratio", "must be at most 64, got " + std::to_string(c.mlp_ratio));
  at_least("in_channels", c.in_channels, 1);
  at_least("out_channels", c.out_channels, 1);
  at_least("num_attention_heads", c.num_attention_heads, 1);
  at_least("attention_head_dim", c.attention_head_dim, 2);
  at_least("num_layers", c.num_layers, 0);
  at_least("num_single_layers", c.num_single_layers, 0);
  at_least("num_refiner_layers", c.num_refiner_layers, 0);
  at_least("patch_size", c.patch_size, 1);
  at_least("patch_size_t", c.patch_size_t, 1);
  at_least("text_embed_dim", c.text_embed_dim, 1);
  at_least("pooled_projection_dim", c.pooled_projection_dim, 1);
  if (c.has_image_proj) at_least("image_proj_dim", c.image_proj_dim, 1);
  if (!(c.mlp_ratio > 0) || c.mlp_dim() < 1)
    bad("mlp_ratio", "must give a positive MLP width, got " + std::to_string(c.mlp_ratio));
  if (!(c.rope_theta > 0)) bad("rope_theta", "must be positive");
  if (c.qk_norm != "rms_norm") bad("qk_norm", "\"" + c.qk_norm + "\" is not supported (rms_norm)");
  std::int64_t sum = 0;
  for (std::int64_t a : c.rope_axes_dim) {
    if (a < 2 || a % 2 != 0) bad("rope_axes_dim", "entries must be positive and even");
    sum += a;
  }
  if (sum != c.attention_head_dim)
    bad("rope_axes_dim", "must sum to attention_head_dim (" + std::to_string(c.attention_head_dim) +
                             "), got " + std::to_string(sum));
}

}  // namespace

TransformerConfig TransformerConfig::from_json(const json& j) {
  if (!j.is_object()) throw Error("transformer config: not a JSON object");
  TransformerConfig c;
  read_int(j, "in_channels", c.in_channels);
  c.out_channels = c.in_channels;  // diffusers: out_channels or in_channels
  read_int(j, "out_channels", c.out_channels);
  read_int(j, "num_attention_heads", c.num_attention_heads);
  read_int(j, "attention_head_dim", c.attention_head_dim);
  read_int(j, "num_layers", c.num_layers);
  read_int(j, "num_single_layers", c.num_single_layers);
  read_int(j, "num_refiner_layers", c.num_refiner_layers);
  read_double(j, "mlp_ratio", c.mlp_ratio);
  read_int(j, "patch_size", c.patch_size);
  read_int(j, "patch_size_t", c.patch_size_t);
  read_string(j, "qk_norm", c.qk_norm);
  read_bool(j, "guidance_embeds", c.guidance_embeds);
  read_int(j, "text_embed_dim", c.text_embed_dim);
  read_int(j, "pooled_projection_dim", c.pooled_projection_dim);
  read_double(j, "rope_theta", c.rope_theta);
  if (j.contains("rope_axes_dim") && !j["rope_axes_dim"].is_null()) {
    const json& a = j["rope_axes_dim"];
    if (!a.is_array() || a.size() != 3) bad("rope_axes_dim", "must be a list of 3 integers");
    for (std::size_t i = 0; i < 3; ++i) {
      if (!a[i].is_number_integer()) bad("rope_axes_dim", "must be a list of 3 integers");
      c.rope_axes_dim[i] = a[i].get<std::int64_t>();
    }
  }
  read_bool(j, "has_image_proj", c.has_image_proj);
  read_int(j, "image_proj_dim", c.image_proj_dim);
  read_bool(j, "has_clean_x_embedder", c.has_clean_x_embedder);
  validate(c);
  return c;
}

json TransformerConfig::to_json() const {
  return json{{"_class_name", "HunyuanVideoTransformer3DModelPacked"},
              {"in_channels", in_channels},
              {"out_channels", out_channels},
              {"num_attention_heads", num_attention_heads},
              {"attention_head_dim", attention_head_dim},
              {"num_layers", num_layers},
              {"num_single_layers", num_single_layers},
              {"num_refiner_layers", num_refiner_layers},
              {"mlp_ratio", mlp_ratio},
              {"patch_size", patch_size},
              {"patch_size_t", patch_size_t},
              {"qk_norm", qk_norm},
              {"guidance_embeds", guidance_embeds},
              {"text_embed_dim", text_embed_dim},
              {"pooled_projection_dim", pooled_projection_dim},
              {"rope_theta", rope_theta},
              {"rope_axes_dim", {rope_axes_dim[0], rope_axes_dim[1], rope_axes_dim[2]}},
              {"has_image_proj", has_image_proj},
              {"image_proj_dim", image_proj_dim},
              {"has_clean_x_embedder", has_clean_x_embedder}};
}

std::vector<ParamSpec> transformer_parameter_specs(const TransformerConfig& cfg) {
  std::vector<ParamSpec> specs;
  transformer::PackedParams unused;
  transformer::bind(ParamBinder::spec_recorder(&specs), unused, cfg);
  return specs;
}

}  // namespace framesmith
