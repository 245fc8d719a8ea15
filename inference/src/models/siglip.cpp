#include "models/siglip.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framesmith/error.h"
#include "io/safetensors.h"
#include "models/encoder_common.h"
#include "models/param_binder.h"

namespace framesmith {

using namespace encoder_detail;

namespace siglip_detail {
// One SiglipEncoderLayer's tensors.
struct Layer {
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b;
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};
}  // namespace siglip_detail
using siglip_detail::Layer;

namespace {

void bind_layer(Layer& l, const ParamBinder& b, const SiglipVisionConfig& c) {
  const std::int64_t d = c.hidden_size, f = c.intermediate_size;
  const ParamBinder a = b.sub("self_attn");
  a.bind(l.k_w, "k_proj.weight", {d, d});
  a.bind(l.k_b, "k_proj.bias", {d}, Init::kZeros);
  a.bind(l.v_w, "v_proj.weight", {d, d});
  a.bind(l.v_b, "v_proj.bias", {d}, Init::kZeros);
  a.bind(l.q_w, "q_proj.weight", {d, d});
  a.bind(l.q_b, "q_proj.bias", {d}, Init::kZeros);
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
    bind_layer(layers[static_cast<std::size_t>(i)], b.sub("encoder.layers." + std::to_string(i)),
               c);
  b.bind(t.ln_w, "post_layernorm.weight", {d}, Init::kOnes);
  b.bind(t.ln_b, "post_layernorm.bias", {d}, Init::kZeros);
}

// SiglipEncoderLayer: pre-norm, full (unmasked) attention and MLP, each added to the residual.
at::Tensor encoder_layer(const Layer& l, const at::Tensor& h, const SiglipVisionConfig& c) {
  const std::int64_t d = c.hidden_size, heads = c.num_attention_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d / heads));
  at::Tensor x = at::layer_norm(h, {d}, l.ln1_w, l.ln1_b, c.layer_norm_eps);
  const at::Tensor q = split_heads(at::linear(x, l.q_w, l.q_b), heads);
  const at::Tensor k = split_heads(at::linear(x, l.k_w, l.k_b), heads);
  const at::Tensor v = split_heads(at::linear(x, l.v_w, l.v_b), heads);
  const at::Tensor r =
      h + at::linear(merge_heads(eager_attention(q, k, v, at::Tensor(), scale)), l.out_w, l.out_b);
  x = at::layer_norm(r, {d}, l.ln2_w, l.ln2_b, c.layer_norm_eps);
  x = at::linear(activation(at::linear(x, l.fc1_w, l.fc1_b), c.hidden_act), l.fc2_w, l.fc2_b);
  return r + x;
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
  for (const Layer& l : layers_) h = encoder_layer(l, h, cfg_);
  return at::layer_norm(h, {cfg_.hidden_size}, post_ln_w_, post_ln_b_, cfg_.layer_norm_eps);
}

std::shared_ptr<SiglipVisionModel> load_siglip_vision(const std::string& folder,
                                                      at::ScalarType dtype, at::Device device) {
  const std::string config_path = folder + "/config.json";
  const nlohmann::json j = read_json_file(config_path, "SigLIP vision");
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
