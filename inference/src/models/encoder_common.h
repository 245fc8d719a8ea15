// Pieces shared by the conditioning encoders (LLaMA, CLIP text, SigLIP vision): reading
// transformers' config.json files, the activation functions they name, eager masked attention as
// transformers computes it, and loader checks. Header-only so that each encoder stays one file.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "models/weights.h"

namespace framesmith::encoder_detail {

// Typed reads with defaults: a missing key (or JSON null) takes the default, a wrong type throws.
inline std::int64_t cfg_int(const nlohmann::json& j, const char* key, std::int64_t def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  const auto& v = j[key];
  // No config size is anywhere near 2^31: larger values (2^63 and up arrive as unsigned, and
  // used to wrap negative) are refused as written.
  constexpr std::int64_t kMax = std::int64_t(1) << 31;
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(kMax))
    throw Error(std::string("config field \"") + key + "\" is far too large, got " + v.dump());
  if (v.is_number_integer()) {
    if (std::abs(v.get<std::int64_t>()) > kMax)
      throw Error(std::string("config field \"") + key + "\" is far too large, got " + v.dump());
    return v.get<std::int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::abs(d) <= double(kMax) && d == std::floor(d)) return static_cast<std::int64_t>(d);
  }
  throw Error(std::string("config field \"") + key + "\" must be an integer, got " + v.dump());
}

inline double cfg_double(const nlohmann::json& j, const char* key, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number())
    throw Error(std::string("config field \"") + key + "\" must be a number, got " + j[key].dump());
  return j[key].get<double>();
}

inline bool cfg_bool(const nlohmann::json& j, const char* key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean())
    throw Error(std::string("config field \"") + key + "\" must be true/false, got " +
                j[key].dump());
  return j[key].get<bool>();
}

inline std::string cfg_string(const nlohmann::json& j, const char* key, const std::string& def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_string())
    throw Error(std::string("config field \"") + key + "\" must be a string, got " + j[key].dump());
  return j[key].get<std::string>();
}

// Composite checkpoints (CLIPModel, SiglipModel, Llava) keep the part's config under a sub-key.
inline const nlohmann::json& sub_config(const nlohmann::json& j, const char* key) {
  return (j.contains(key) && j[key].is_object()) ? j[key] : j;
}

inline void require_positive(std::int64_t v, const char* field) {
  if (v <= 0)
    throw Error(std::string("config field \"") + field + "\" must be > 0, got " +
                std::to_string(v));
}

// The activations transformers' ACT2FN maps these names to.
inline bool known_activation(const std::string& name) {
  return name == "gelu" || name == "gelu_pytorch_tanh" || name == "gelu_new" ||
         name == "quick_gelu" || name == "silu" || name == "swish" || name == "relu";
}

inline at::Tensor activation(const at::Tensor& x, const std::string& name) {
  if (name == "gelu") return at::gelu(x);
  if (name == "gelu_pytorch_tanh") return at::gelu(x, "tanh");
  if (name == "gelu_new")  // the tanh formula written out, as transformers' NewGELUActivation
    return 0.5 * x * (1.0 + at::tanh(0.7978845608028654 * (x + 0.044715 * at::pow(x, 3.0))));
  if (name == "quick_gelu") return x * at::sigmoid(1.702 * x);
  if (name == "silu" || name == "swish") return at::silu(x);
  if (name == "relu") return at::relu(x);
  throw Error("unsupported activation \"" + name + "\"");
}

// Eager attention as transformers computes it: scores in the model dtype, masked positions set to
// the dtype's lowest value (not -inf, so a fully masked row stays finite, as in transformers),
// softmax in float32. q: [B, H, Sq, D]; k, v: [B, Hkv, Sk, D] with H a multiple of Hkv (grouped
// queries: head h reads kv head h / (H / Hkv)). keep: bool, broadcastable to [B, H, Sq, Sk],
// true = attend; undefined = attend everywhere.
inline at::Tensor eager_attention(const at::Tensor& q, at::Tensor k, at::Tensor v,
                                  const at::Tensor& keep, double scale) {
  const std::int64_t rep = q.size(1) / k.size(1);
  if (rep > 1) {
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  at::Tensor w = at::matmul(q, k.transpose(-1, -2)) * scale;
  if (keep.defined()) {
    const double lowest = w.scalar_type() == at::kDouble ? std::numeric_limits<double>::lowest()
                          : w.scalar_type() == at::kHalf ? -65504.0
                          : w.scalar_type() == at::kBFloat16
                              ? -3.3895313892515355e38
                              : static_cast<double>(std::numeric_limits<float>::lowest());
    w = w.masked_fill(keep.logical_not(), lowest);
  }
  w = at::softmax(w, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(w, v);
}

// [B, S, H*D] <-> [B, H, S, D].
inline at::Tensor split_heads(const at::Tensor& x, std::int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}
inline at::Tensor merge_heads(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), -1});
}

// Token ids: integer [B, S] with every id in [0, vocab). Checked on the host before an embedding
// lookup, where an out-of-range id would be an assertion (CUDA) instead of a message.
inline at::Tensor check_token_ids(const at::Tensor& ids, std::int64_t vocab, const char* what) {
  if (!ids.defined() || ids.dim() != 2 || ids.size(0) == 0 || ids.size(1) == 0)
    throw Error(std::string(what) + ": input_ids must be a non-empty [batch, tokens] tensor");
  if (at::isFloatingType(ids.scalar_type()) || ids.scalar_type() == at::kBool)
    throw Error(std::string(what) + ": input_ids must be integers");
  const at::Tensor host = ids.to(at::kCPU).to(at::kLong).contiguous();
  const std::int64_t lo = host.min().item<std::int64_t>();
  const std::int64_t hi = host.max().item<std::int64_t>();
  if (lo < 0 || hi >= vocab)
    throw Error(std::string(what) + ": token id " + std::to_string(lo < 0 ? lo : hi) +
                " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  return host;
}

// attention_mask [B, S] (nonzero = real token) as bool on `device`; undefined stays undefined.
inline at::Tensor padding_keep(const at::Tensor& mask, const at::Tensor& ids, at::Device device,
                               const char* what) {
  if (!mask.defined()) return at::Tensor();
  if (mask.sizes() != ids.sizes())
    throw Error(std::string(what) + ": attention_mask must have the shape of input_ids");
  return mask.to(device).ne(0);
}

// One Error listing what check_specs found (first few problems), naming the folder.
inline void throw_if_problems(const std::vector<std::string>& problems, const std::string& folder,
                              const std::string& what) {
  if (problems.empty()) return;
  std::string msg = folder + ": the " + what + " checkpoint does not match config.json: ";
  const std::size_t shown = std::min<std::size_t>(problems.size(), 8);
  for (std::size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + problems[i];
  if (problems.size() > shown) msg += "; and " + std::to_string(problems.size() - shown) + " more";
  throw Error(msg);
}

// Specs with `prefix` in front of every name (the checkpoint's key layout).
inline std::vector<ParamSpec> with_prefix(std::vector<ParamSpec> specs, const std::string& prefix) {
  for (ParamSpec& p : specs) p.name = prefix + p.name;
  return specs;
}

}  // namespace framesmith::encoder_detail
