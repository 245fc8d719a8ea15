// Named weights out of a TensorStore, checked (and, loaded at load, converted) on the way in.
// Model parts ask for `get("transformer_blocks.0.attn.to_q.weight", {out, in})`; a missing name or
// a shape that disagrees with the config is an Error naming the tensor, never a crash later.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/weight_form.h"

namespace framesmith {

// How make-tiny-model initialises a parameter (the real values come from checkpoints).
enum class Init { kNormal = 1, kOnes, kZeros };

struct ParamSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  Init init = Init::kNormal;
};

// When floating weights take the compute dtype.
enum class Conversion {
  // get() converts: the model holds a host (or device) copy of itself in the compute dtype.
  kAtLoad = 1,
  // get() returns the stored tensors: zero-copy views of the mapped file in the file's dtype
  // (float8 as raw codes where LibTorch has no float8 dtype). The host holds no copy of the
  // model; each tensor is converted (form(), to_compute()) when its module is placed on the
  // device. A 13B bf16 transformer computed in float32 then costs 26 GB of mapped file, not a
  // 52 GB host copy.
  kAtUse,
};

class Weights {
 public:
  // `dtype`: the compute dtype of floating tensors (float32 on CPU by default). Integer tensors
  // are never converted. Conversions widen or narrow with rounding (never bit truncation).
  Weights(std::shared_ptr<const io::TensorStore> store, at::ScalarType dtype = at::kFloat,
          at::Device device = at::kCPU, std::string prefix = "",
          Conversion conversion = Conversion::kAtLoad);

  // The tensor `prefix + name`, shape-checked. Throws Error naming the tensor.
  at::Tensor get(const std::string& name, at::IntArrayRef shape) const;
  // As get(), but an undefined tensor when absent (for truly optional parameters only).
  at::Tensor get_optional(const std::string& name, at::IntArrayRef shape) const;
  bool has(const std::string& name) const;
  // Weights under `prefix + name + "."`.
  Weights sub(const std::string& name) const;
  // The same weights with LoRA factors added to the patched ones as they are converted (keys as
  // the store's, without this object's prefix).
  Weights with_lora(
      std::shared_ptr<const std::map<std::string, std::vector<LoraFactor>>> patch) const;
  // Full key for `name` (for error messages).
  std::string key(const std::string& name) const { return prefix_ + name; }

  // Names present in the store under this prefix that no get() call has asked for: a checkpoint
  // with extra keys usually belongs to another model, so loaders report them.
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  Conversion conversion() const { return conversion_; }
  const io::TensorStore& store() const { return *store_; }
  // The LoRA factors set by with_lora (null: none).
  const std::shared_ptr<const std::map<std::string, std::vector<LoraFactor>>>& lora() const {
    return lora_;
  }
  // How the tensor get(name) returned becomes its compute form: the compute dtype (integers:
  // their own), and whether it holds raw float8 codes (loaded at use only; at load they were
  // decoded). Throws Error for a name the store lacks.
  WeightForm form(const std::string& name) const;

 private:
  // How the file's tensor `name` becomes its compute form (float8 codes included).
  WeightForm stored_form(const std::string& name) const;

  std::shared_ptr<const io::TensorStore> store_;
  at::ScalarType dtype_;
  at::Device device_;
  std::string prefix_;
  Conversion conversion_;
  std::shared_ptr<const std::map<std::string, std::vector<LoraFactor>>> lora_;
};

// Checks that every spec'd parameter exists with its shape; returns a list of problems (empty
// when the checkpoint matches), each naming the tensor. Used by inspect-model and loaders.
// At most 20 problems are listed, then one "... and N more (M of them missing tensors)" line.
std::vector<std::string> check_specs(const io::TensorStore& store,
                                     const std::vector<ParamSpec>& specs);
// The first `shown` problems and one line that counts the rest (a damaged config once printed
// 3.2 million "missing tensor" lines).
std::vector<std::string> cap_problems(std::vector<std::string> problems, std::size_t shown = 20);

// "[3072, 12288]", for messages that name a tensor's shape.
std::string shape_str(at::IntArrayRef shape);

// Random tensors for `specs` (deterministic for `seed`), for make-tiny-model.
std::vector<std::pair<std::string, at::Tensor>> make_random_weights(
    const std::vector<ParamSpec>& specs, std::uint64_t seed, double std = 0.05);

}  // namespace framesmith
