#include <cstdlib>
#include <fstream>

#include "framesmith/error.h"
#include "framesmith/model_set.h"
#include "io/files.h"

namespace framesmith {
namespace {

// A component folder counts as present when the file its loader reads first exists.
bool component_present(Component c, const std::string& dir) {
  switch (c) {
    case Component::kTokenizer:
      return io::is_file(dir + "/tokenizer.json");
    case Component::kTokenizer2:
      return io::is_file(dir + "/vocab.json") && io::is_file(dir + "/merges.txt");
    case Component::kFeatureExtractor:
      return io::is_file(dir + "/preprocessor_config.json");
    default:
      return io::is_file(dir + "/config.json");
  }
}

// Why a component folder does not count as present: "<dir>/ has no config.json", or "" when
// the folder itself is absent.
std::string what_is_missing(Component c, const std::string& dir) {
  if (dir.empty() || !io::is_dir(dir)) return "";
  switch (c) {
    case Component::kTokenizer:
      return dir + "/ has no tokenizer.json";
    case Component::kTokenizer2:
      return dir + "/ has no " +
             std::string(io::is_file(dir + "/vocab.json") ? "merges.txt" : "vocab.json");
    case Component::kFeatureExtractor:
      return dir + "/ has no preprocessor_config.json";
    case Component::kTransformer:
      // Single-file checkpoints (Kijai's FramePackI2V_HY_fp8_e4m3fn.safetensors) carry no
      // config; FramePack's is a small file of the original repository.
      return dir +
             "/ has no config.json (a single-file transformer checkpoint needs FramePack's "
             "config.json, from lllyasviel/FramePackI2V_HY, next to it)";
    default:
      return dir + "/ has no config.json";
  }
}

// Hub cache layout: models--org--name/refs/main holds the revision; snapshots/<rev>/ the files.
std::string hub_snapshot(const std::string& cache, const std::string& repo, std::string* rev_out) {
  std::string dir = cache + "/models--";
  for (char ch : repo) dir += (ch == '/') ? std::string("--") : std::string(1, ch);
  if (!io::is_dir(dir)) return "";
  std::string rev;
  std::ifstream ref(dir + "/refs/main");
  if (ref) std::getline(ref, rev);
  // A revision is a hex hash; anything else in refs/main is ignored rather than followed.
  const bool sane =
      !rev.empty() && rev.find('/') == std::string::npos && rev.find("..") == std::string::npos;
  if (!sane) return "";
  const std::string snap = dir + "/snapshots/" + rev;
  if (!io::is_dir(snap)) return "";
  if (rev_out) *rev_out = rev;
  return snap;
}

}  // namespace

const std::vector<Component>& all_components() {
  static const std::vector<Component> all = {
      Component::kTransformer,  Component::kVae,
      Component::kTextEncoder,  Component::kTextEncoder2,
      Component::kTokenizer,    Component::kTokenizer2,
      Component::kImageEncoder, Component::kFeatureExtractor};
  return all;
}

const char* folder_name(Component c) {
  switch (c) {
    case Component::kTransformer:
      return "transformer";
    case Component::kVae:
      return "vae";
    case Component::kTextEncoder:
      return "text_encoder";
    case Component::kTextEncoder2:
      return "text_encoder_2";
    case Component::kTokenizer:
      return "tokenizer";
    case Component::kTokenizer2:
      return "tokenizer_2";
    case Component::kImageEncoder:
      return "image_encoder";
    case Component::kFeatureExtractor:
      return "feature_extractor";
  }
  return "?";
}

std::string hub_repo_for(Component c, TransformerVariant variant) {
  switch (c) {
    case Component::kTransformer:
      return variant == TransformerVariant::kF1 ? "lllyasviel/FramePack_F1_I2V_HY_20250503"
                                                : "lllyasviel/FramePackI2V_HY";
    case Component::kImageEncoder:
    case Component::kFeatureExtractor:
      return "lllyasviel/flux_redux_bfl";
    default:
      return "hunyuanvideo-community/HunyuanVideo";
  }
}

std::string default_hub_cache() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) return c;
  if (const char* h = std::getenv("HF_HOME"); h && *h) return std::string(h) + "/hub";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/huggingface/hub";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/huggingface/hub";
  return ".cache/huggingface/hub";
}

const ComponentPath* ModelSet::find(Component c) const {
  for (const auto& p : found)
    if (p.component == c) return &p;
  return nullptr;
}

std::string ModelSet::missing_detail(Component c) const {
  for (std::size_t i = 0; i < missing.size() && i < missing_details.size(); ++i)
    if (missing[i] == c) return missing_details[i];
  return "";
}

ModelSet locate_model_set(const std::string& where, TransformerVariant variant) {
  ModelSet set;
  const bool hub = where == "hf" || where.rfind("hf:", 0) == 0;
  if (!hub) {
    if (!io::is_dir(where))
      throw Error(where +
                  ": no such model folder (expected a folder with transformer/, vae/, ... "
                  "or \"hf\" for the Hugging Face cache)");
    set.description = where;
    for (Component c : all_components()) {
      const std::string dir = where + "/" + folder_name(c);
      if (component_present(c, dir)) {
        set.found.push_back({c, dir, "folder"});
      } else {
        set.missing.push_back(c);
        set.missing_details.push_back(what_is_missing(c, dir));
      }
    }
    return set;
  }
  const std::string cache = where.size() > 3 ? where.substr(3) : default_hub_cache();
  if (!io::is_dir(cache)) throw Error(cache + ": Hugging Face hub cache folder does not exist");
  set.description = "hf-cache " + cache;
  for (Component c : all_components()) {
    const std::string repo = hub_repo_for(c, variant);
    std::string rev;
    const std::string snap = hub_snapshot(cache, repo, &rev);
    // The FramePack transformer repositories keep their files at the root, the others in
    // diffusers sub-folders.
    const std::string dir = snap.empty()                     ? ""
                            : (c == Component::kTransformer) ? snap
                                                             : snap + "/" + folder_name(c);
    if (!dir.empty() && component_present(c, dir))
      set.found.push_back({c, dir, "hf-cache: " + repo + "@" + rev.substr(0, 12)});
    else {
      set.missing.push_back(c);
      set.missing_details.push_back(what_is_missing(c, dir));
    }
  }
  return set;
}

}  // namespace framesmith
