// Where a model set's components live: a diffusers-layout folder, or the Hugging Face hub cache
// holding the real FramePack repositories. Plain C++ (app/ and ui/ include it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace framesmith {

enum class Component {
  kTransformer = 1,
  kVae,
  kTextEncoder,       // LLaMA (HunyuanVideo text_encoder)
  kTextEncoder2,      // CLIP-L (text_encoder_2)
  kTokenizer,         // LLaMA-3 tokenizer.json
  kTokenizer2,        // CLIP vocab.json + merges.txt
  kImageEncoder,      // SigLIP (flux_redux_bfl image_encoder)
  kFeatureExtractor,  // SigLIP preprocessor_config.json
};

const std::vector<Component>& all_components();
// The diffusers folder name: "transformer", "vae", "text_encoder", ...
const char* folder_name(Component c);

enum class TransformerVariant { kOriginal = 1, kF1 };

struct ComponentPath {
  Component component = Component::kTransformer;
  std::string path;    // folder holding config + weights (empty when not found)
  std::string origin;  // "folder" or "hf-cache: <repo>@<rev>"
};

struct ModelSet {
  std::string description;           // what was asked for, resolved
  std::vector<ComponentPath> found;  // components located
  std::vector<Component> missing;    // components not located
  // Per missing component: what is wrong when its folder exists ("DIR/ has no config.json"),
  // "" when the folder itself is absent.
  std::vector<std::string> missing_details;
  const ComponentPath* find(Component c) const;
  std::string missing_detail(Component c) const;
};

// `where`: a diffusers-layout folder (transformer/, vae/, ...), or "hf" for the hub cache
// (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), or "hf:<cache dir>".
// Throws Error when `where` is neither an existing folder nor a hub cache.
ModelSet locate_model_set(const std::string& where,
                          TransformerVariant variant = TransformerVariant::kOriginal);

// The hub repositories each component comes from (for messages and docs).
std::string hub_repo_for(Component c, TransformerVariant variant);

// The hub cache folder the environment points at.
std::string default_hub_cache();

}  // namespace framesmith
