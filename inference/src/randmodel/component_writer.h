// One model component written as the hub lays it out: config.json, then its weights as one
// `<base>.safetensors` or as `<base>-0000i-of-0000n.safetensors` shards with
// `<base>.safetensors.index.json` (weight_map, metadata.total_size), each tensor made and written
// in pieces (randmodel/random_weights.h).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "io/float8.h"
#include "io/safetensors_stream.h"
#include "models/weights.h"

namespace framesmith::randmodel {

struct ComponentPlan {
  std::string folder;     // "transformer", "text_encoder", ...
  nlohmann::json config;  // config.json, key for key as the hub has it
  std::vector<ParamSpec> specs;
  at::ScalarType dtype = at::kBFloat16;
  std::string weights_base;  // "diffusion_pytorch_model" (diffusers) or "model" (transformers)
  // A new shard starts before a tensor that would take the current one past this (as
  // save_pretrained's max_shard_size); 0: one file.
  std::uint64_t max_shard_bytes = 0;
  // Kijai's float8 layout: every tensor float8 codes except norms and biases (modulation
  // included), which keep `dtype`. Unset: every tensor is `dtype`.
  std::optional<io::Float8Format> float8;

  // What tensor `spec` is stored as: `dtype`, or kByte float8 codes.
  at::ScalarType stored_scalar(const ParamSpec& spec) const;
  bool stored_as_float8(const ParamSpec& spec) const;
  std::uint64_t bytes_of(const ParamSpec& spec) const;  // its data as stored
  std::uint64_t data_bytes() const;
  std::int64_t parameters() const;
};

struct ShardPlan {
  std::string file;
  std::vector<std::size_t> tensors;  // indexes into ComponentPlan::specs, in file order
  std::uint64_t data_bytes = 0;
};

std::vector<ShardPlan> plan_shards(const ComponentPlan& plan);

// Writes `plan` under `root/plan.folder/`; `log` gets one line per file written.
void write_component(const std::string& root, const ComponentPlan& plan, std::uint64_t seed,
                     io::SafetensorsStreamWriter::Data data, std::ostream& log);

}  // namespace framesmith::randmodel
