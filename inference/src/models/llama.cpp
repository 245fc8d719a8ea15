#include "models/llama.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "models/encoder_common.h"
#include "models/param_binder.h"

namespace framesmith {

using namespace encoder_detail;

namespace {

LlamaRopeScaling read_rope_scaling(const nlohmann::json& j) {
  LlamaRopeScaling s;
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return s;
  const nlohmann::json& r = j["rope_scaling"];
  if (!r.is_object()) throw Error("config field \"rope_scaling\" must be an object or null");
  // transformers reads "rope_type", older configs say "type".
  s.type = cfg_string(r, "rope_type", cfg_string(r, "type", "default"));
  s.factor = cfg_double(r, "factor", s.factor);
  s.low_freq_factor = cfg_double(r, "low_freq_factor", s.low_freq_factor);
  s.high_freq_factor = cfg_double(r, "high_freq_factor", s.high_freq_factor);
  s.original_max_position_embeddings =
      cfg_int(r, "original_max_position_embeddings", s.original_max_position_embeddings);
  return s;
}

// The parameters of one decoder layer, named as transformers' LlamaDecoderLayer.
template <typename T>
void bind_layer(T& l, const ParamBinder& b, const LlamaConfig& c) {
  const std::int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim;
  const std::int64_t kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size;
  const ParamBinder a = b.sub("self_attn"), m = b.sub("mlp");
  a.bind(l.q_w, "q_proj.weight", {q, d});
  a.bind(l.k_w, "k_proj.weight", {kv, d});
  a.bind(l.v_w, "v_proj.weight", {kv, d});
  a.bind(l.o_w, "o_proj.weight", {d, q});
  if (c.attention_bias) {
    a.bind(l.q_b, "q_proj.bias", {q}, Init::kZeros);
    a.bind(l.k_b, "k_proj.bias", {kv}, Init::kZeros);
    a.bind(l.v_b, "v_proj.bias", {kv}, Init::kZeros);
    a.bind(l.o_b, "o_proj.bias", {d}, Init::kZeros);
  }
  m.bind(l.gate_w, "gate_proj.weight", {f, d});
  m.bind(l.up_w, "up_proj.weight", {f, d});
  m.bind(l.down_w, "down_proj.weight", {d, f});
  if (c.mlp_bias) {
    m.bind(l.gate_b, "gate_proj.bias", {f}, Init::kZeros);
    m.bind(l.up_b, "up_proj.bias", {f}, Init::kZeros);
    m.bind(l.down_b, "down_proj.bias", {d}, Init::kZeros);
  }
  b.bind(l.input_layernorm, "input_layernorm.weight", {d}, Init::kOnes);
  b.bind(l.post_attention_layernorm, "post_attention_layernorm.weight", {d}, Init::kOnes);
}

template <typename M, typename L>
void bind_model(M& embed, M& norm, std::vector<L>& layers, const ParamBinder& b,
                const LlamaConfig& c) {
  b.bind(embed, "embed_tokens.weight", {c.vocab_size, c.hidden_size});
  layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    bind_layer(layers[static_cast<std::size_t>(i)], b.sub("layers." + std::to_string(i)), c);
  b.bind(norm, "norm.weight", {c.hidden_size}, Init::kOnes);
}

// LlamaRMSNorm: normalised in float32, cast back, then scaled (weight * x.to(input dtype)).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  const at::Tensor x32 = x.to(at::kFloat);
  const at::Tensor var = x32.pow(2).mean(-1, /*keepdim=*/true);
  return w * (x32 * at::rsqrt(var + eps)).to(x.scalar_type());
}

// transformers' rotate_half convention (q/k rows were permuted by the converter to match it).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace

namespace llama_detail {
// One decoder layer's tensors (biases undefined unless the config asks for them).
struct Layer {
  at::Tensor q_w, k_w, v_w, o_w, q_b, k_b, v_b, o_b;
  at::Tensor gate_w, up_w, down_w, gate_b, up_b, down_b;
  at::Tensor input_layernorm, post_attention_layernorm;
};
}  // namespace llama_detail
using llama_detail::Layer;

LlamaConfig LlamaConfig::from_json(const nlohmann::json& root) {
  if (!root.is_object()) throw Error("LLaMA config: expected a JSON object");
  const nlohmann::json& j = sub_config(root, "text_config");
  const std::string type = cfg_string(j, "model_type", "llama");
  if (type != "llama")
    throw Error("config field \"model_type\" is \"" + type + "\", expected \"llama\"");
  LlamaConfig c;
  c.vocab_size = cfg_int(j, "vocab_size", c.vocab_size);
  c.hidden_size = cfg_int(j, "hidden_size", c.hidden_size);
  c.intermediate_size = cfg_int(j, "intermediate_size", c.intermediate_size);
  c.num_hidden_layers = cfg_int(j, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg_int(j, "num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = cfg_int(j, "num_key_value_heads", c.num_attention_heads);
  require_positive(c.num_attention_heads, "num_attention_heads");
  c.head_dim = cfg_int(j, "head_dim", c.hidden_size / c.num_attention_heads);
  c.rms_norm_eps = cfg_double(j, "rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = cfg_double(j, "rope_theta", c.rope_theta);
  c.max_position_embeddings = cfg_int(j, "max_position_embeddings", c.max_position_embeddings);
  c.hidden_act = cfg_string(j, "hidden_act", c.hidden_act);
  c.attention_bias = cfg_bool(j, "attention_bias", c.attention_bias);
  c.mlp_bias = cfg_bool(j, "mlp_bias", c.mlp_bias);
  c.rope_scaling = read_rope_scaling(j);
  c.validate();
  return c;
}

void LlamaConfig::validate() const {
  require_positive(vocab_size, "vocab_size");
  require_positive(hidden_size, "hidden_size");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(num_hidden_layers, "num_hidden_layers");
  require_positive(num_attention_heads, "num_attention_heads");
  require_positive(num_key_value_heads, "num_key_value_heads");
  require_positive(head_dim, "head_dim");
  if (num_attention_heads % num_key_value_heads != 0)
    throw Error("config: num_attention_heads (" + std::to_string(num_attention_heads) +
                ") is not a multiple of num_key_value_heads (" +
                std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0)
    throw Error("config: head_dim " + std::to_string(head_dim) + " must be even for RoPE");
  if (!(rms_norm_eps > 0)) throw Error("config field \"rms_norm_eps\" must be > 0");
  if (!(rope_theta > 0)) throw Error("config field \"rope_theta\" must be > 0");
  if (!known_activation(hidden_act))
    throw Error("config field \"hidden_act\": unsupported activation \"" + hidden_act + "\"");
  const std::string& t = rope_scaling.type;
  if (t != "default" && t != "linear" && t != "llama3")
    throw Error("config field \"rope_scaling\": type \"" + t +
                "\" is not supported (default, linear, llama3 are)");
  if (t != "default" && !(rope_scaling.factor > 0))
    throw Error("config field \"rope_scaling.factor\" must be > 0");
  if (t == "llama3" && !(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor))
    throw Error("config: rope_scaling high_freq_factor must exceed low_freq_factor");
}

std::vector<ParamSpec> llama_parameter_specs(const LlamaConfig& cfg) {
  std::vector<ParamSpec> specs;
  at::Tensor embed, norm;
  std::vector<Layer> layers;
  bind_model(embed, norm, layers, ParamBinder::spec_recorder(&specs), cfg);
  return specs;
}

std::string detect_llama_prefix(const io::TensorStore& store) {
  for (const char* p : {"", "model.", "language_model.model.", "model.language_model."})
    if (store.has(std::string(p) + "embed_tokens.weight")) return p;
  throw Error(store.description() +
              ": no LLaMA embed_tokens.weight under any known prefix (none, \"model.\", "
              "\"language_model.model.\", \"model.language_model.\")");
}

at::Tensor llama_inv_freq(const LlamaConfig& cfg) {
  // As transformers: theta ** (arange(0, d, 2) / d) in float32.
  const std::int64_t d = cfg.head_dim;
  const at::Tensor exponent = at::arange(0, d, 2, at::kLong).to(at::kFloat) / static_cast<float>(d);
  at::Tensor inv = 1.0 / at::pow(cfg.rope_theta, exponent);
  const LlamaRopeScaling& s = cfg.rope_scaling;
  if (s.type == "linear") return inv / s.factor;
  if (s.type != "llama3") return inv;
  // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor;
  const double high_wavelen = old_len / s.high_freq_factor;
  const at::Tensor wavelen = 2 * 3.14159265358979323846 / inv;  // 2 pi / inv_freq
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv / s.factor, inv);
  const at::Tensor smooth =
      (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  const at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  const at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return at::where(medium, smoothed, scaled);
}

LlamaModel::LlamaModel(LlamaConfig cfg, const Weights& w)
    : cfg_(std::move(cfg)), dtype_(w.dtype()), device_(w.device()), weights_(w) {
  cfg_.validate();
  bind_model(embed_tokens_, norm_, layers_, ParamBinder::loader(w), cfg_);
  inv_freq_ = llama_inv_freq(cfg_).to(device_);
}

LlamaModel::~LlamaModel() = default;

std::vector<std::pair<std::string, at::Tensor*>> LlamaModel::module_tensors(int i) {
  const int layers = static_cast<int>(cfg_.num_hidden_layers);
  if (i < 0 || i > layers + 1)
    throw Error("LLaMA: module " + std::to_string(i) + " is out of range for " +
                std::to_string(layers + 2) + " modules");
  ParamBinder::TensorRefs refs;
  if (i == 0) {
    // At use the table stays mapped: the forward gathers the prompt's rows (embed()).
    if (weights_.conversion() == Conversion::kAtLoad)
      refs.emplace_back("embed_tokens.weight", &embed_tokens_);
  } else if (i <= layers) {
    bind_layer(layers_[static_cast<std::size_t>(i - 1)],
               ParamBinder::collector(&refs).sub("layers." + std::to_string(i - 1)), cfg_);
  } else {
    refs.emplace_back("norm.weight", &norm_);
  }
  return refs;
}

void LlamaModel::set_compute_device(at::Device device) {
  device_ = device;
  inv_freq_ = inv_freq_.to(device);
}

at::Tensor LlamaModel::for_forward(const std::string& key, const at::Tensor& held) const {
  if (!held.defined() || weights_.conversion() == Conversion::kAtLoad) return held;
  const WeightForm f = weight_form(key);
  if (f.matches(held)) return held;  // placed in its compute form (or stored in it)
  return to_compute(held, f).to(device_);
}

Layer LlamaModel::layer_for_forward(std::size_t i) const {
  Layer l = layers_[i];
  ParamBinder::TensorRefs refs;
  bind_layer(l, ParamBinder::collector(&refs).sub("layers." + std::to_string(i)), cfg_);
  for (auto& [key, t] : refs) *t = for_forward(key, *t);
  return l;
}

at::Tensor LlamaModel::embed(const at::Tensor& ids) const {
  const WeightForm f = weight_form("embed_tokens.weight");
  if (f.matches(embed_tokens_) && embed_tokens_.device() == ids.device())
    return at::embedding(embed_tokens_, ids);
  // Only the prompt's rows of the table are read and converted: LLaMA 3 8B's 128256 x 4096
  // table would be 2 GB in float32.
  const at::Tensor rows =
      embed_tokens_.index_select(0, ids.reshape({-1}).to(embed_tokens_.device(), at::kLong));
  std::vector<std::int64_t> shape = ids.sizes().vec();
  shape.push_back(cfg_.hidden_size);
  return to_compute(rows.to(device_), f).view(shape);
}

std::vector<at::Tensor> LlamaModel::hidden_states(const at::Tensor& input_ids,
                                                  const at::Tensor& attention_mask,
                                                  std::int64_t count) const {
  return forward(input_ids, attention_mask, count, /*keep_all=*/true);
}

std::vector<at::Tensor> LlamaModel::forward(const at::Tensor& input_ids,
                                            const at::Tensor& attention_mask, std::int64_t count,
                                            bool keep_all) const {
  // after_forward runs however the forward ends (a streamer's copies go also after an error).
  struct ForwardEnd {
    const std::function<void()>& f;
    ~ForwardEnd() {
      if (!f) return;
      try {
        f();
      } catch (...) {
      }
    }
  } end{after_forward};
  const auto use = [this](int module) {
    if (before_module) before_module(module);
  };

  const std::int64_t total = cfg_.num_hidden_layers + 1;
  if (count < 0 || count > total) count = total;
  const at::Tensor ids = check_token_ids(input_ids, cfg_.vocab_size, "LLaMA").to(device_);
  const std::int64_t S = ids.size(1);
  const at::Tensor pad = padding_keep(attention_mask, ids, device_, "LLaMA");

  // Causal and padding masks combined: query i attends key j <= i that is not padding.
  const auto bopt = at::TensorOptions().dtype(at::kBool).device(device_);
  at::Tensor keep = at::ones({S, S}, bopt).tril().view({1, 1, S, S});
  if (pad.defined()) keep = keep.logical_and(pad.view({pad.size(0), 1, 1, S}));

  // RoPE tables for positions 0..S-1, computed in float32 and cast as transformers does.
  const at::Tensor pos = at::arange(S, at::TensorOptions().dtype(at::kFloat).device(device_));
  const at::Tensor freqs = at::outer(pos, inv_freq_);
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().to(dtype_), sin = emb.sin().to(dtype_);

  const double scale = 1.0 / std::sqrt(static_cast<double>(cfg_.head_dim));
  std::vector<at::Tensor> out;
  out.reserve(keep_all ? static_cast<std::size_t>(count) : 1);
  const auto emit = [&](const at::Tensor& hidden) {
    if (!keep_all) out.clear();
    out.push_back(hidden);
  };
  use(0);
  at::Tensor h = embed(ids);
  emit(h);
  for (std::int64_t i = 0; i + 1 < count; ++i) {
    use(static_cast<int>(i) + 1);
    const Layer l = layer_for_forward(static_cast<std::size_t>(i));
    at::Tensor x = rms_norm(h, l.input_layernorm, cfg_.rms_norm_eps);
    const at::Tensor q =
        apply_rope(split_heads(at::linear(x, l.q_w, l.q_b), cfg_.num_attention_heads), cos, sin);
    const at::Tensor k =
        apply_rope(split_heads(at::linear(x, l.k_w, l.k_b), cfg_.num_key_value_heads), cos, sin);
    const at::Tensor v = split_heads(at::linear(x, l.v_w, l.v_b), cfg_.num_key_value_heads);
    h = h + at::linear(merge_heads(eager_attention(q, k, v, keep, scale)), l.o_w, l.o_b);
    x = rms_norm(h, l.post_attention_layernorm, cfg_.rms_norm_eps);
    const at::Tensor gated = activation(at::linear(x, l.gate_w, l.gate_b), cfg_.hidden_act) *
                             at::linear(x, l.up_w, l.up_b);
    h = h + at::linear(gated, l.down_w, l.down_b);
    // transformers' last entry is the final norm's output, not the raw last layer.
    if (i + 1 == cfg_.num_hidden_layers) {
      use(static_cast<int>(cfg_.num_hidden_layers) + 1);
      emit(rms_norm(h, for_forward("norm.weight", norm_), cfg_.rms_norm_eps));
    } else {
      emit(h);
    }
  }
  return out;
}

at::Tensor LlamaModel::hidden_state(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                    std::int64_t index) const {
  const std::int64_t total = cfg_.num_hidden_layers + 1;
  const std::int64_t i = index < 0 ? index + total : index;
  if (i < 0 || i >= total)
    throw Error("LLaMA: hidden state index " + std::to_string(index) + " is out of range for " +
                std::to_string(total) + " hidden states");
  // Only the asked-for state is kept (the earlier ones are freed as the forward goes).
  return forward(input_ids, attention_mask, i + 1, /*keep_all=*/false).back();
}

std::shared_ptr<LlamaModel> load_llama(const std::string& folder, at::ScalarType dtype,
                                       at::Device device, Conversion conversion) {
  const std::string config_path = folder + "/config.json";
  const nlohmann::json j = io::read_json_file(config_path, "the LLaMA config");
  LlamaConfig cfg;
  try {
    cfg = LlamaConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  auto store = std::make_shared<const io::TensorStore>(io::TensorStore::open(folder));
  const std::string prefix = detect_llama_prefix(*store);
  throw_if_problems(check_specs(*store, with_prefix(llama_parameter_specs(cfg), prefix)), folder,
                    "LLaMA");
  if (conversion == Conversion::kAtUse) device = at::kCPU;
  return std::make_shared<LlamaModel>(std::move(cfg),
                                      Weights(store, dtype, device, prefix, conversion));
}

}  // namespace framesmith
