#include "models/components.h"

#include <sys/stat.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "framesmith/error.h"
#include "image/image_prep.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "models/clip_text.h"
#include "models/llama.h"
#include "models/siglip.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "models/weights.h"
#include "text/tokenizer_clip.h"
#include "text/tokenizer_llama.h"

namespace framesmith {
namespace {

// How each weight-bearing component reads its config and which parameters it must hold.
struct WeightedKind {
  std::function<std::vector<ParamSpec>(const nlohmann::json&)> specs;
  std::function<std::string(const nlohmann::json&)> summary;
};

std::string summarize(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  std::ostringstream o;
  bool first = true;
  for (const char* k : keys) {
    if (!j.contains(k)) continue;
    o << (first ? "" : ", ") << k << "=" << j[k].dump();
    first = false;
  }
  return o.str();
}

const WeightedKind* kind_for(Component c) {
  static const WeightedKind transformer{
      [](const nlohmann::json& j) {
        return transformer_parameter_specs(TransformerConfig::from_json(j));
      },
      [](const nlohmann::json& j) {
        return summarize(
            j, {"num_attention_heads", "attention_head_dim", "num_layers", "num_single_layers",
                "num_refiner_layers", "text_embed_dim", "has_image_proj", "has_clean_x_embedder"});
      }};
  static const WeightedKind vae{
      [](const nlohmann::json& j) { return vae_parameter_specs(VaeConfig::from_json(j)); },
      [](const nlohmann::json& j) {
        return summarize(
            j, {"block_out_channels", "layers_per_block", "latent_channels", "scaling_factor"});
      }};
  // The encoders are checked as their loaders check them, so that inspect-model says "ok" only
  // for what generate can load.
  static const WeightedKind llama{
      [](const nlohmann::json& j) { return llama_parameter_specs(LlamaConfig::from_json(j)); },
      [](const nlohmann::json& j) {
        return summarize(j, {"hidden_size", "num_hidden_layers", "num_attention_heads",
                             "num_key_value_heads", "vocab_size"});
      }};
  static const WeightedKind clip{[](const nlohmann::json& j) {
                                   return clip_text_parameter_specs(ClipTextConfig::from_json(j));
                                 },
                                 [](const nlohmann::json& j) {
                                   return summarize(
                                       j, {"hidden_size", "num_hidden_layers",
                                           "num_attention_heads", "projection_dim", "vocab_size"});
                                 }};
  static const WeightedKind siglip{
      [](const nlohmann::json& j) {
        return siglip_vision_parameter_specs(SiglipVisionConfig::from_json(j));
      },
      [](const nlohmann::json& j) {
        return summarize(j, {"hidden_size", "num_hidden_layers", "num_attention_heads",
                             "image_size", "patch_size"});
      }};
  switch (c) {
    case Component::kTransformer:
      return &transformer;
    case Component::kVae:
      return &vae;
    case Component::kTextEncoder:
      return &llama;
    case Component::kTextEncoder2:
      return &clip;
    case Component::kImageEncoder:
      return &siglip;
    default:
      return nullptr;
  }
}

}  // namespace

ComponentInfo inspect_component(Component c, const std::string& dir) {
  ComponentInfo info;
  const bool has_weights = c != Component::kTokenizer && c != Component::kTokenizer2 &&
                           c != Component::kFeatureExtractor;
  try {
    if (!has_weights) {
      const char* main_file = c == Component::kTokenizer    ? "tokenizer.json"
                              : c == Component::kTokenizer2 ? "vocab.json"
                                                            : "preprocessor_config.json";
      info.class_name = c == Component::kFeatureExtractor ? "SiglipImageProcessor" : "tokenizer";
      const nlohmann::json j = io::read_json_file(dir + "/" + main_file, main_file);
      // Parsed exactly as generate parses them (a garbage tokenizer.json used to pass here).
      if (c == Component::kTokenizer) text::LlamaTokenizer::from_file(dir + "/tokenizer.json");
      if (c == Component::kTokenizer2) text::ClipTokenizer::from_folder(dir);
      if (c == Component::kFeatureExtractor)
        image::ImageProcessorConfig::load(dir + "/preprocessor_config.json");
      if (c == Component::kTokenizer) {
        if (!j.contains("model") || !j["model"].contains("vocab"))
          info.problems.push_back(dir + "/tokenizer.json: no model.vocab");
        else
          info.config_summary = "vocab " + std::to_string(j["model"]["vocab"].size()) + " entries";
      } else if (c == Component::kTokenizer2) {
        info.config_summary = "vocab " + std::to_string(j.size()) + " entries";
      } else {
        info.config_summary = summarize(j, {"size", "image_mean", "image_std", "rescale_factor"});
      }
      return info;
    }
    const nlohmann::json cfg = io::read_json_file(dir + "/config.json", "config.json");
    if (cfg.contains("_class_name"))
      info.class_name = cfg["_class_name"].get<std::string>();
    else if (cfg.contains("architectures") && cfg["architectures"].is_array() &&
             !cfg["architectures"].empty())
      info.class_name = cfg["architectures"][0].get<std::string>();
    const io::TensorStore store = io::TensorStore::open(dir);
    for (const std::string& n : store.names()) {
      const io::TensorInfo& ti = store.info(n);
      std::int64_t count = 1;
      for (auto d : ti.shape) count *= d;
      info.parameters += count;
      info.dtypes[ti.dtype]++;
    }
    info.bytes = store.total_bytes();
    if (const WeightedKind* kind = kind_for(c)) {
      info.config_summary = kind->summary(cfg);
      std::vector<ParamSpec> specs = kind->specs(cfg);
      // LLaMA checkpoints sit behind a prefix that depends on how they were saved (Llava, ...).
      if (c == Component::kTextEncoder) {
        const std::string prefix = detect_llama_prefix(store);
        for (ParamSpec& p : specs) p.name = prefix + p.name;
      }
      for (auto& p : check_specs(store, specs)) info.problems.push_back(p);
      // Tensors the model does not use: harmless (SigLIP's pooling head, say), but a long list
      // is how a file for another model shows itself.
      std::set<std::string> used;
      for (const ParamSpec& p : specs) used.insert(p.name);
      std::vector<std::string> extra;
      for (const std::string& n : store.names())
        if (!used.count(n)) extra.push_back(n);
      if (!extra.empty()) {
        std::string note = std::to_string(extra.size()) + " tensor(s) the model does not use: ";
        for (std::size_t i = 0; i < extra.size() && i < 5; ++i) note += (i ? ", " : "") + extra[i];
        if (extra.size() > 5) note += ", ...";
        info.notes.push_back(note);
      }
    }
  } catch (const std::exception& e) {
    info.problems.push_back(e.what());
  }
  return info;
}

}  // namespace framesmith
