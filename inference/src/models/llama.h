// The LLaMA text encoder (transformers' `LlamaModel`, no LM head): HunyuanVideo's `text_encoder`
// (the language tower of llava-llama-3-8b), whose hidden_states[-3] FramePack uses as the prompt
// embedding. Parameter names are transformers' own, so checkpoints load unchanged:
//   embed_tokens, layers.N.self_attn.{q,k,v,o}_proj, layers.N.mlp.{gate,up,down}_proj,
//   layers.N.{input,post_attention}_layernorm, norm
// optionally behind a prefix: "model." (LlamaForCausalLM), "language_model.model." (Llava as saved
// by transformers < 4.52) or "model.language_model." (Llava, transformers >= 4.52).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/weights.h"

namespace framesmith {

namespace llama_detail {
struct Layer;
}  // namespace llama_detail

// rope_scaling of config.json: absent / "default", "linear", or "llama3".
struct LlamaRopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

// transformers' LlamaConfig fields the forward needs, with LlamaConfig's defaults.
struct LlamaConfig {
  std::int64_t vocab_size = 32000;
  std::int64_t hidden_size = 4096;
  std::int64_t intermediate_size = 11008;
  std::int64_t num_hidden_layers = 32;
  std::int64_t num_attention_heads = 32;
  std::int64_t num_key_value_heads = 32;  // defaults to num_attention_heads when absent
  std::int64_t head_dim = 128;            // defaults to hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::int64_t max_position_embeddings = 2048;
  std::string hidden_act = "silu";
  bool attention_bias = false;
  bool mlp_bias = false;
  LlamaRopeScaling rope_scaling;

  // Reads a LlamaConfig, or the "text_config" of a Llava config. Missing keys take defaults;
  // wrong types or unsupported values throw Error naming the field.
  static LlamaConfig from_json(const nlohmann::json& j);
  void validate() const;
};

// Every parameter (without checkpoint prefix) with its shape, in load order.
std::vector<ParamSpec> llama_parameter_specs(const LlamaConfig& cfg);

// The key prefix under which `store` holds a LlamaModel ("", "model.", "language_model.model.",
// "model.language_model."); throws Error when none of them has embed_tokens.weight.
std::string detect_llama_prefix(const io::TensorStore& store);

// RoPE inverse frequencies [head_dim / 2] in float32, after rope_scaling.
at::Tensor llama_inv_freq(const LlamaConfig& cfg);

class LlamaModel {
 public:
  // `w` must already point at the model's prefix (see detect_llama_prefix).
  LlamaModel(LlamaConfig cfg, const Weights& w);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  // input_ids: integer [B, S]; attention_mask: [B, S] (nonzero = token, 0 = padding) or undefined.
  // Returns transformers' hidden_states: element 0 the embeddings, i the output of layer i, the
  // last (index num_hidden_layers) after the final norm. With `count` < L + 1 only the first
  // `count` entries are computed (and the final norm only when all are asked for).
  std::vector<at::Tensor> hidden_states(const at::Tensor& input_ids,
                                        const at::Tensor& attention_mask = at::Tensor(),
                                        std::int64_t count = -1) const;
  // hidden_states[index] with Python's negative indexing (FramePack: -3), computing only the
  // layers it needs.
  at::Tensor hidden_state(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          std::int64_t index) const;

  const LlamaConfig& config() const { return cfg_; }
  at::ScalarType dtype() const { return dtype_; }
  // The compute device: where inputs, activations and buffers go (where the weights were loaded,
  // unless set_compute_device changed it).
  at::Device device() const { return device_; }

  // The weights as numbered modules in execution order, for streaming them onto the device
  // (FramePack's DynamicSwapInstaller): 0 embed_tokens, 1..L the decoder layers (layers.N), L + 1
  // the final norm. module_tensors(i) names each tensor as the checkpoint does (without prefix)
  // and points at the tensor the model holds, which a streamer may replace by a device copy
  // between modules (the pointers stay valid for the model's lifetime).
  int num_modules() const { return static_cast<int>(cfg_.num_hidden_layers) + 2; }
  std::vector<std::pair<std::string, at::Tensor*>> module_tensors(int i);
  // Called right before module i is used in a forward, only for the modules that forward uses
  // (hidden_state(-3) stops before the last two layers and the norm).
  std::function<void(int module)> before_module;
  // Called when a forward ends, also when it throws (a streamer drops its copies); must not throw.
  std::function<void()> after_forward;
  // Inputs, activations and buffers (RoPE's inv_freq) on `device` from now on; the weights stay
  // where they are (e.g. on the host, brought in by before_module).
  void set_compute_device(at::Device device);

  // How the held tensor `key` (a module_tensors name) becomes what the forward computes with.
  // Loaded at use (Conversion::kAtUse) the held tensors are the mapped checkpoint's, in its dtype:
  // a streamer places them in this form; a layer nothing placed is converted for the forward
  // that uses it (the plain CPU), and the embedding table is never placed whole: the forward
  // reads and converts only the prompt's rows of it (module 0 then has no tensors).
  WeightForm weight_form(const std::string& key) const { return weights_.form(key); }

 private:
  // The layer's tensors as the forward uses them (see weight_form).
  llama_detail::Layer layer_for_forward(std::size_t i) const;
  at::Tensor for_forward(const std::string& key, const at::Tensor& held) const;
  at::Tensor embed(const at::Tensor& ids) const;
  // hidden_states' first `count` entries, all of them kept or only the last one.
  std::vector<at::Tensor> forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  std::int64_t count, bool keep_all) const;

  LlamaConfig cfg_;
  at::ScalarType dtype_;
  at::Device device_;
  Weights weights_;  // what the model was loaded from (forms of its tensors)
  at::Tensor embed_tokens_, norm_, inv_freq_;
  std::vector<llama_detail::Layer> layers_;
};

// Loads `folder`/config.json and the folder's safetensors (one file or shards), at whatever
// prefix the checkpoint uses. Every missing or misshapen tensor is reported in one Error.
// `conversion`: see Weights; at use, the weights stay on the host whatever `device` says.
std::shared_ptr<LlamaModel> load_llama(const std::string& folder, at::ScalarType dtype,
                                       at::Device device,
                                       Conversion conversion = Conversion::kAtLoad);

}  // namespace framesmith
