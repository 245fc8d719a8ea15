// What the engine knows of each model component: how to read its config, which parameters it
// must hold, and how to write a tiny random one. inspect-model and make-tiny-model use this.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "framesmith/model_set.h"

namespace framesmith {

struct ComponentInfo {
  std::string class_name;
  std::string config_summary;
  std::int64_t parameters = 0;
  std::uint64_t bytes = 0;
  std::map<std::string, int> dtypes;  // dtype -> tensor count
  std::vector<std::string> problems;  // each names the file/tensor/value
  std::vector<std::string> notes;     // worth knowing, not wrong (e.g. tensors the model ignores)
};

// Never throws for bad files: problems are collected in the result.
ComponentInfo inspect_component(Component c, const std::string& dir);

}  // namespace framesmith
