#include "models/siglip.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framesmith/error.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "models/encoder_common.h"
#include "models/param_binder.h"
#include "models/prenorm_layer.h"

namespace framesmith {

using namespace encoder_detail;

using Layer = PreNormLayer;

namespace {

struct Tops {
  at::Tensor patch_w, patch_b, pos, ln_w, ln_b;
};

void bind_model(Tops& t, std::vector<Layer>& layers, const ParamBinder& root,
                const SiglipVisionConfig& c) {
  const ParamBinder b = root.sub("vision_model");
  const ParamBinder e = b.sub("embeddings");
  const std::int64_t d = c.hidden_size, p = c.patch_size;
  e.bind(t.patch_w, "patch_embedding.weight", {d, c.num_channels, p, p});
  e.bind(t.patch_b, "patch_embedding.bias", {d}, Init::kZeros);
  e.bind(t.pos, "position_embedding.weight", {c.num_patches(), d});
  layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    bind_prenorm_layer(layers[static_cast<std::size_t>(i)],
                       b.sub("encoder.layers." + std::to_string(i)), c.hidden_size,
                       c.intermediate_size);
  b.bind(t.ln_w, "post_layernorm.weight", {d}, Init::kOnes);
  b.bind(t.ln_b, "post_layernorm.bias", {d}, Init::kZeros);
}

}  // namespace

SiglipVisionConfig SiglipVisionConfig::from_json(const nlohmann::json& root) {
  if (!root.is_object()) throw Error("SigLIP vision config: expected a JSON object");
  const nlohmann::json& j = sub_config(root, "vision_config");
  SiglipVisionConfig c;
  c.hidden_size = cfg_int(j, "hidden_size", c.hidden_size);
  c.intermediate_size = cfg_int(j, "intermediate_size", c.intermediate_size);
  c.num_hidden_layers = cfg_int(j, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg_int(j, "num_attention_heads", c.num_attention_heads);
  c.num_channels = cfg_int(j, "num_channels", c.num_channels);
  c.image_size = cfg_int(j, "image_size", c.image_size);
  c.patch_size = cfg_int(j, "patch_size", c.patch_size);
  c.hidden_act = cfg_string(j, "hidden_act", c.hidden_act);
  c.layer_norm_eps = cfg_double(j, "layer_norm_eps", c.layer_norm_eps);
  c.validate();
  return c;
}

void SiglipVisionConfig::validate() const {
  require_positive(hidden_size, "hidden_size");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(num_hidden_layers, "num_hidden_layers");
  require_positive(num_attention_heads, "num_attention_heads");
  require_positive(num_channels, "num_channels");
  require_positive(image_size, "image_size");
  require_positive(patch_size, "patch_size");
  if (hidden_size % num_attention_heads != 0)
    throw Error("config: hidden_size " + std::to_string(hidden_size) +
                " is not a multiple of num_attention_heads " + std::to_string(num_attention_heads));
  if (patch_size > image_size)
    throw Error("config: patch_size " + std::to_string(patch_size) + " exceeds image_size " +
                std::to_string(image_size));
  if (!(layer_norm_eps > 0)) throw Error("config field \"layer_norm_eps\" must be > 0");
  if (!known_activation(hidden_act))
    throw Error("config field \"hidden_act\": unsupported activation \"" + hidden_act + "\"");
}

std::vector<ParamSpec> siglip_vision_parameter_specs(const SiglipVisionConfig& cfg) {
  std::vector<ParamSpec> specs;
  Tops t;
  std::vector<Layer> layers;
  bind_model(t, layers, ParamBinder::spec_recorder(&specs), cfg);
  return specs;
}

SiglipVisionModel::SiglipVisionModel(SiglipVisionConfig cfg, const Weights& w)
    : cfg_(std::move(cfg)), dtype_(w.dtype()), device_(w.device()) {
  cfg_.validate();
  Tops t;
  bind_model(t, layers_, ParamBinder::loader(w), cfg_);
  patch_w_ = t.patch_w;
  patch_b_ = t.patch_b;
  position_embedding_ = t.pos;
  post_ln_w_ = t.ln_w;
  post_ln_b_ = t.ln_b;
}

SiglipVisionModel::~SiglipVisionModel() = default;

at::Tensor SiglipVisionModel::forward(const at::Tensor& pixel_values) const {
  const std::int64_t s = cfg_.image_size;
  if (!pixel_values.defined() || pixel_values.dim() != 4 || pixel_values.size(0) == 0 ||
      pixel_values.size(1) != cfg_.num_channels || pixel_values.size(2) != s ||
      pixel_values.size(3) != s) {
    std::ostringstream o;
    o << "SigLIP: pixel_values must be [batch, " << cfg_.num_channels << ", " << s << ", " << s
      << "], got ";
    if (pixel_values.defined())
      o << pixel_values.sizes();
    else
      o << "nothing";
    throw Error(o.str());
  }
  if (!at::isFloatingType(pixel_values.scalar_type()))
    throw Error("SigLIP: pixel_values must be floating point (the preprocessor's output)");
  const at::Tensor x = pixel_values.to(device_, dtype_);
  // Patchify with a stride-p convolution, then [B, D, h, w] -> [B, h*w, D] plus positions.
  at::Tensor h = at::conv2d(x, patch_w_, patch_b_, {cfg_.patch_size, cfg_.patch_size});
  h = h.flatten(2).transpose(1, 2) + position_embedding_;
  for (const Layer& l : layers_)
    h = prenorm_layer_forward(l, h, at::Tensor(), cfg_.num_attention_heads, cfg_.layer_norm_eps,
                              cfg_.hidden_act);
  return at::layer_norm(h, {cfg_.hidden_size}, post_ln_w_, post_ln_b_, cfg_.layer_norm_eps);
}

std::shared_ptr<SiglipVisionModel> load_siglip_vision(const std::string& folder,
                                                      at::ScalarType dtype, at::Device device) {
  const std::string config_path = folder + "/config.json";
  const nlohmann::json j = io::read_json_file(config_path, "the SigLIP vision config");
  SiglipVisionConfig cfg;
  try {
    cfg = SiglipVisionConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  auto store = std::make_shared<const io::TensorStore>(io::TensorStore::open(folder));
  throw_if_problems(check_specs(*store, siglip_vision_parameter_specs(cfg)), folder,
                    "SigLIP vision");
  return std::make_shared<SiglipVisionModel>(std::move(cfg), Weights(store, dtype, device));
}

}  // namespace framesmith
