// One description of a model part's parameters serves three purposes: loading them from a
// checkpoint, listing their names and shapes (ParamSpec), and handing out pointers to the loaded
// tensors (for the memory governor, which swaps block weights in and out).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "models/weights.h"

namespace framesmith {

class ParamBinder {
 public:
  using TensorRefs = std::vector<std::pair<std::string, at::Tensor*>>;

  static ParamBinder loader(const Weights& w) { return ParamBinder(&w, nullptr, nullptr, ""); }
  static ParamBinder spec_recorder(std::vector<ParamSpec>* out) {
    return ParamBinder(nullptr, out, nullptr, "");
  }
  static ParamBinder collector(TensorRefs* out) { return ParamBinder(nullptr, nullptr, out, ""); }

  // Loads / records / collects the tensor `prefix + name` of shape `shape` into `field`.
  void bind(at::Tensor& field, const std::string& name, std::vector<std::int64_t> shape,
            Init init = Init::kNormal) const {
    const std::string key = prefix_ + name;
    if (weights_) field = weights_->get(key, shape);
    if (specs_) specs_->push_back(ParamSpec{key, std::move(shape), init});
    if (refs_) refs_->emplace_back(key, &field);
  }

  ParamBinder sub(const std::string& name) const {
    return ParamBinder(weights_, specs_, refs_, prefix_ + name + ".");
  }

 private:
  ParamBinder(const Weights* w, std::vector<ParamSpec>* specs, TensorRefs* refs, std::string prefix)
      : weights_(w), specs_(specs), refs_(refs), prefix_(std::move(prefix)) {}

  const Weights* weights_;
  std::vector<ParamSpec>* specs_;
  TensorRefs* refs_;
  std::string prefix_;
};

}  // namespace framesmith
