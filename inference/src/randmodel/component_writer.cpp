#include "randmodel/component_writer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "framesmith/units.h"
#include "randmodel/random_weights.h"
#include "tiny/tiny_parts.h"

namespace framesmith::randmodel {
namespace {

std::int64_t numel_of(const ParamSpec& p) {
  std::int64_t n = 1;
  for (std::int64_t d : p.shape) n *= d;
  return n;
}

// "model-00002-of-00004.safetensors", as save_pretrained names shards.
std::string shard_name(const std::string& base, std::size_t i, std::size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.safetensors", i + 1, n);
  return base + buf;
}

void write_shard(const std::string& path, const ComponentPlan& plan, const ShardPlan& shard,
                 std::uint64_t seed, io::SafetensorsStreamWriter::Data data) {
  std::vector<io::PlannedTensor> tensors;
  for (std::size_t i : shard.tensors) {
    const ParamSpec& spec = plan.specs[i];
    tensors.push_back({spec.name, plan.stored_scalar(spec), spec.shape,
                       plan.stored_as_float8(spec) ? io::float8_name(*plan.float8) : ""});
  }
  io::SafetensorsStreamWriter w(path, std::move(tensors), {{"format", "pt"}}, data);
  if (data == io::SafetensorsStreamWriter::Data::kWritten)
    for (std::size_t i : shard.tensors) {
      const ParamSpec& spec = plan.specs[i];
      if (plan.stored_as_float8(spec))
        // Made in float32, then rounded to the nearest code, as a converter writes them.
        make_random_pieces(spec, at::kFloat, seed, [&](const at::Tensor& piece) {
          w.append(io::encode_float8(piece, *plan.float8));
        });
      else
        make_random_pieces(spec, plan.dtype, seed,
                           [&](const at::Tensor& piece) { w.append(piece); });
    }
  w.finish();
}

void write_index(const std::string& path, const ComponentPlan& plan,
                 const std::vector<ShardPlan>& shards) {
  nlohmann::json weight_map = nlohmann::json::object();
  for (const ShardPlan& s : shards)
    for (std::size_t i : s.tensors) weight_map[plan.specs[i].name] = s.file;
  tiny::write_json(path,
                   {{"metadata", {{"total_size", plan.data_bytes()}}}, {"weight_map", weight_map}});
}

}  // namespace

bool ComponentPlan::stored_as_float8(const ParamSpec& spec) const {
  return float8 && spec.name.find("norm") == std::string::npos &&
         spec.name.find("bias") == std::string::npos;
}

at::ScalarType ComponentPlan::stored_scalar(const ParamSpec& spec) const {
  return stored_as_float8(spec) ? at::kByte : dtype;
}

std::uint64_t ComponentPlan::bytes_of(const ParamSpec& spec) const {
  return static_cast<std::uint64_t>(numel_of(spec)) * at::elementSize(stored_scalar(spec));
}

std::uint64_t ComponentPlan::data_bytes() const {
  std::uint64_t n = 0;
  for (const ParamSpec& p : specs) n += bytes_of(p);
  return n;
}

std::int64_t ComponentPlan::parameters() const {
  std::int64_t n = 0;
  for (const ParamSpec& p : specs) n += numel_of(p);
  return n;
}

std::vector<ShardPlan> plan_shards(const ComponentPlan& plan) {
  std::vector<ShardPlan> shards(1);
  for (std::size_t i = 0; i < plan.specs.size(); ++i) {
    const std::uint64_t b = plan.bytes_of(plan.specs[i]);
    if (plan.max_shard_bytes > 0 && !shards.back().tensors.empty() &&
        shards.back().data_bytes + b > plan.max_shard_bytes)
      shards.emplace_back();
    shards.back().tensors.push_back(i);
    shards.back().data_bytes += b;
  }
  for (std::size_t i = 0; i < shards.size(); ++i)
    shards[i].file = shards.size() == 1 ? plan.weights_base + ".safetensors"
                                        : shard_name(plan.weights_base, i, shards.size());
  return shards;
}

void write_component(const std::string& root, const ComponentPlan& plan, std::uint64_t seed,
                     io::SafetensorsStreamWriter::Data data, std::ostream& log) {
  const std::string dir = root + "/" + plan.folder;
  std::filesystem::create_directories(dir);
  tiny::write_json(dir + "/config.json", plan.config);
  const std::vector<ShardPlan> shards = plan_shards(plan);
  for (const ShardPlan& s : shards) {
    const auto t0 = std::chrono::steady_clock::now();
    write_shard(dir + "/" + s.file, plan, s, seed, data);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log << "  " << plan.folder << "/" << s.file << "  " << format_size(double(s.data_bytes))
        << " in " << static_cast<int>(secs * 10) / 10.0 << " s\n"
        << std::flush;
  }
  if (shards.size() > 1)
    write_index(dir + "/" + plan.weights_base + ".safetensors.index.json", plan, shards);
}

}  // namespace framesmith::randmodel
