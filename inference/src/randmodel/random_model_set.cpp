#include "randmodel/random_model_set.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>

#include "framesmith/error.h"
#include "framesmith/units.h"
#include "io/files.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "randmodel/full_model_set.h"
#include "tiny/tiny_parts.h"

namespace framesmith::randmodel {
namespace {

constexpr std::uint64_t kTokenizerBytes = 16ull << 20;  // the full tokenizers' files, about
constexpr std::uint64_t kHeaderBytesPerTensor = 256;    // a safetensors header entry, at most
constexpr std::uint64_t kDiskMargin = 256ull << 20;

using io::SafetensorsStreamWriter;

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "float" || s == "float32" || s == "fp32") return at::kFloat;
  if (s == "bf16" || s == "bfloat16") return at::kBFloat16;
  if (s == "fp16" || s == "half" || s == "float16") return at::kHalf;
  throw Error("make-random-model: unknown --dtype \"" + s + "\" (float, bf16, fp16, fp8_e4m3fn)");
}

ComponentPlan transformer_plan(const TransformerConfig& c) {
  nlohmann::json j = c.to_json();
  j["_class_name"] = "HunyuanVideoTransformer3DModelPacked";
  return {"transformer",
          j,
          transformer_parameter_specs(c),
          at::kBFloat16,
          "diffusion_pytorch_model",
          10ull * 1000 * 1000 * 1000,
          std::nullopt};
}

ComponentPlan vae_plan(const VaeConfig& c) {
  return {"vae", c.to_json(), vae_parameter_specs(c), at::kFloat, "diffusion_pytorch_model",
          0,     std::nullopt};
}

// The weighted components of --config, and whether the tokenizers and feature extractor come too.
std::vector<ComponentPlan> plans_for(const RandomModelOptions& o, bool* with_extras) {
  *with_extras = o.config == "full";
  std::vector<ComponentPlan> plans;
  if (o.config == "full") {
    plans = full_component_plans();
  } else if (o.config == "tiny") {
    plans = {transformer_plan(tiny::tiny_transformer_config()), vae_plan(tiny::tiny_vae_config())};
  } else {
    plans = {transformer_plan(TransformerConfig::from_json(
                 io::read_json_file(o.config, "the transformer config (--config)"))),
             vae_plan(VaeConfig())};
  }
  for (ComponentPlan& p : plans) {
    if (o.max_shard_bytes > 0) p.max_shard_bytes = o.max_shard_bytes;
    if (p.folder != "transformer" || o.transformer_dtype.empty()) continue;
    if (o.transformer_dtype == "fp8_e4m3fn") {
      // Kijai's FramePackI2V_HY_fp8_e4m3fn.safetensors: one file under its own name (the
      // loader finds it next to config.json), float8 weights, bf16 norms, biases, modulation.
      p.float8 = io::Float8Format::kE4M3Fn;
      p.dtype = at::kBFloat16;
      p.weights_base = "FramePackI2V_HY_fp8_e4m3fn";
      p.max_shard_bytes = 0;
    } else {
      p.dtype = parse_dtype(o.transformer_dtype);
    }
  }
  return plans;
}

const std::vector<std::string>& extra_folders() {
  static const std::vector<std::string> f = {"tokenizer", "tokenizer_2", "feature_extractor"};
  return f;
}

bool wanted(const RandomModelOptions& o, const std::string& folder) {
  return o.only.empty() || o.only.count(folder) != 0;
}

// Free bytes on the file system that will hold `dir` (its nearest existing ancestor).
std::uint64_t free_bytes_for(const std::string& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir);
  while (!p.empty() && !std::filesystem::exists(p) && p != p.parent_path()) p = p.parent_path();
  struct statvfs st {};
  if (::statvfs(p.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

void check_disk(const RandomModelOptions& o, std::uint64_t on_disk) {
  const std::uint64_t free = free_bytes_for(o.dir);
  if (free < on_disk + kDiskMargin)
    throw Error(o.dir + ": needs " + format_size(double(on_disk)) + " of disk but only " +
                format_size(double(free)) + " is free there" +
                (o.sparse ? "" : " (--sparse writes headers only, for tests that read no data)"));
}

void write_extras(const RandomModelOptions& o, std::ostream& log) {
  for (const std::string& f : extra_folders()) {
    if (!wanted(o, f)) continue;
    if (f == "tokenizer") write_full_llama_tokenizer(o.dir + "/tokenizer");
    if (f == "tokenizer_2") write_full_clip_tokenizer(o.dir + "/tokenizer_2");
    if (f == "feature_extractor") {
      std::filesystem::create_directories(o.dir + "/feature_extractor");
      tiny::write_json(o.dir + "/feature_extractor/preprocessor_config.json",
                       siglip_preprocessor_config());
    }
    log << "  " << f << "/\n" << std::flush;
  }
}

}  // namespace

std::int64_t RandomModelReport::parameters(const std::string& folder) const {
  for (const auto& c : components)
    if (c.folder == folder) return c.parameters;
  return 0;
}

RandomModelReport write_random_model_set(const RandomModelOptions& o, std::ostream& log) {
  if (o.dir.empty()) throw Error("make-random-model: the output folder DIR is required");
  bool with_extras = false;
  std::vector<ComponentPlan> plans;
  for (ComponentPlan& p : plans_for(o, &with_extras))
    if (wanted(o, p.folder)) plans.push_back(std::move(p));
  for (const std::string& f : o.only) {
    bool known = with_extras && std::find(extra_folders().begin(), extra_folders().end(), f) !=
                                    extra_folders().end();
    for (const ComponentPlan& p : plans) known = known || p.folder == f;
    if (!known)
      throw Error("make-random-model: --only names \"" + f + "\", not a component of --config " +
                  o.config);
  }
  RandomModelReport r;
  std::uint64_t headers = with_extras ? kTokenizerBytes : 0;
  for (const ComponentPlan& p : plans) {
    r.total_bytes += p.data_bytes();
    headers += p.specs.size() * kHeaderBytesPerTensor;
    r.components.push_back(
        {p.folder, p.parameters(), p.data_bytes(), static_cast<int>(plan_shards(p).size())});
  }
  const std::uint64_t on_disk = (o.sparse ? 0 : r.total_bytes) + headers;
  log << "make-random-model: writing " << format_size(double(r.total_bytes + headers))
      << (o.sparse ? " (sparse: " + format_size(double(on_disk)) + " on disk)" : "") << " to "
      << o.dir << "\n"
      << std::flush;
  check_disk(o, on_disk);
  std::filesystem::create_directories(o.dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto data =
      o.sparse ? SafetensorsStreamWriter::Data::kSparse : SafetensorsStreamWriter::Data::kWritten;
  for (const ComponentPlan& p : plans) write_component(o.dir, p, o.seed, data, log);
  if (with_extras) write_extras(o, log);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace framesmith::randmodel
