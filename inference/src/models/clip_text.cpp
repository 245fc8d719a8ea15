#include "models/clip_text.h"

#include <cmath>
#include <nlohmann/json.hpp>

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
  at::Tensor tok, pos, ln_w, ln_b;
};

void bind_model(Tops& t, std::vector<Layer>& layers, const ParamBinder& root,
                const ClipTextConfig& c) {
  const ParamBinder b = root.sub("text_model");
  const ParamBinder e = b.sub("embeddings");
  e.bind(t.tok, "token_embedding.weight", {c.vocab_size, c.hidden_size});
  e.bind(t.pos, "position_embedding.weight", {c.max_position_embeddings, c.hidden_size});
  layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    bind_prenorm_layer(layers[static_cast<std::size_t>(i)],
                       b.sub("encoder.layers." + std::to_string(i)), c.hidden_size,
                       c.intermediate_size);
  b.bind(t.ln_w, "final_layer_norm.weight", {c.hidden_size}, Init::kOnes);
  b.bind(t.ln_b, "final_layer_norm.bias", {c.hidden_size}, Init::kZeros);
}

}  // namespace

ClipTextConfig ClipTextConfig::from_json(const nlohmann::json& root) {
  if (!root.is_object()) throw Error("CLIP text config: expected a JSON object");
  const nlohmann::json& j = sub_config(root, "text_config");
  ClipTextConfig c;
  c.vocab_size = cfg_int(j, "vocab_size", c.vocab_size);
  c.hidden_size = cfg_int(j, "hidden_size", c.hidden_size);
  c.intermediate_size = cfg_int(j, "intermediate_size", c.intermediate_size);
  c.num_hidden_layers = cfg_int(j, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg_int(j, "num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = cfg_int(j, "max_position_embeddings", c.max_position_embeddings);
  c.hidden_act = cfg_string(j, "hidden_act", c.hidden_act);
  c.layer_norm_eps = cfg_double(j, "layer_norm_eps", c.layer_norm_eps);
  c.eos_token_id = cfg_int(j, "eos_token_id", c.eos_token_id);
  c.validate();
  return c;
}

void ClipTextConfig::validate() const {
  require_positive(vocab_size, "vocab_size");
  require_positive(hidden_size, "hidden_size");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(num_hidden_layers, "num_hidden_layers");
  require_positive(num_attention_heads, "num_attention_heads");
  require_positive(max_position_embeddings, "max_position_embeddings");
  if (hidden_size % num_attention_heads != 0)
    throw Error("config: hidden_size " + std::to_string(hidden_size) +
                " is not a multiple of num_attention_heads " + std::to_string(num_attention_heads));
  if (!(layer_norm_eps > 0)) throw Error("config field \"layer_norm_eps\" must be > 0");
  if (!known_activation(hidden_act))
    throw Error("config field \"hidden_act\": unsupported activation \"" + hidden_act + "\"");
}

std::vector<ParamSpec> clip_text_parameter_specs(const ClipTextConfig& cfg) {
  std::vector<ParamSpec> specs;
  Tops t;
  std::vector<Layer> layers;
  bind_model(t, layers, ParamBinder::spec_recorder(&specs), cfg);
  return specs;
}

ClipTextModel::ClipTextModel(ClipTextConfig cfg, const Weights& w)
    : cfg_(std::move(cfg)), dtype_(w.dtype()), device_(w.device()) {
  cfg_.validate();
  Tops t;
  bind_model(t, layers_, ParamBinder::loader(w), cfg_);
  token_embedding_ = t.tok;
  position_embedding_ = t.pos;
  final_ln_w_ = t.ln_w;
  final_ln_b_ = t.ln_b;
}

ClipTextModel::~ClipTextModel() = default;

std::vector<std::int64_t> ClipTextModel::pool_positions(const at::Tensor& input_ids) const {
  const at::Tensor ids = check_token_ids(input_ids, cfg_.vocab_size, "CLIP text");
  const std::int64_t B = ids.size(0), S = ids.size(1);
  const std::int64_t* p = ids.data_ptr<std::int64_t>();
  std::vector<std::int64_t> pos(static_cast<std::size_t>(B), 0);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t* row = p + b * S;
    std::int64_t best = 0;
    for (std::int64_t s = 0; s < S; ++s) {
      const bool better = cfg_.eos_token_id == 2 ? row[s] > row[best] : row[s] == cfg_.eos_token_id;
      if (better) {
        best = s;
        if (cfg_.eos_token_id != 2) break;  // the first end-of-text
      }
    }
    pos[static_cast<std::size_t>(b)] = best;
  }
  return pos;
}

ClipTextOutput ClipTextModel::forward(const at::Tensor& input_ids,
                                      const at::Tensor& attention_mask) const {
  const at::Tensor ids = check_token_ids(input_ids, cfg_.vocab_size, "CLIP text").to(device_);
  const std::int64_t B = ids.size(0), S = ids.size(1);
  if (S > cfg_.max_position_embeddings)
    throw Error("CLIP text: " + std::to_string(S) + " tokens exceed max_position_embeddings " +
                std::to_string(cfg_.max_position_embeddings));
  const auto bopt = at::TensorOptions().dtype(at::kBool).device(device_);
  at::Tensor keep = at::ones({S, S}, bopt).tril().view({1, 1, S, S});
  const at::Tensor pad = padding_keep(attention_mask, ids, device_, "CLIP text");
  if (pad.defined()) keep = keep.logical_and(pad.view({B, 1, 1, S}));

  ClipTextOutput out;
  at::Tensor h = at::embedding(token_embedding_, ids) + position_embedding_.narrow(0, 0, S);
  out.hidden_states.push_back(h);
  for (const Layer& l : layers_) {
    h = prenorm_layer_forward(l, h, keep, cfg_.num_attention_heads, cfg_.layer_norm_eps,
                              cfg_.hidden_act);
    out.hidden_states.push_back(h);
  }
  out.last_hidden_state =
      at::layer_norm(h, {cfg_.hidden_size}, final_ln_w_, final_ln_b_, cfg_.layer_norm_eps);
  // Row b's pooled token is row b * S + pos[b] of the flattened [B * S, D] states.
  std::vector<std::int64_t> rows = pool_positions(input_ids);
  for (std::int64_t b = 0; b < B; ++b) rows[static_cast<std::size_t>(b)] += b * S;
  const at::Tensor index = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(device_);
  out.pooler_output =
      out.last_hidden_state.reshape({B * S, cfg_.hidden_size}).index_select(0, index);
  return out;
}

std::shared_ptr<ClipTextModel> load_clip_text(const std::string& folder, at::ScalarType dtype,
                                              at::Device device) {
  const std::string config_path = folder + "/config.json";
  const nlohmann::json j = io::read_json_file(config_path, "the CLIP text config");
  ClipTextConfig cfg;
  try {
    cfg = ClipTextConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  auto store = std::make_shared<const io::TensorStore>(io::TensorStore::open(folder));
  throw_if_problems(check_specs(*store, clip_text_parameter_specs(cfg)), folder, "CLIP text");
  return std::make_shared<ClipTextModel>(std::move(cfg), Weights(store, dtype, device));
}

}  // namespace framesmith
