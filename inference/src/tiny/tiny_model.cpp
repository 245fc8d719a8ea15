// make-tiny-model: a complete model set in the diffusers layout with deterministic random weights.
// Sizes are chosen so the whole pipeline runs in about a minute on two cores; the shapes keep
// every structural feature of the real models (GQA, dual/single blocks, refiner, causal VAE).
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "io/safetensors.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "models/weights.h"
#include "tiny/tiny_parts.h"

namespace framesmith {
namespace tiny {

void make_dir(const std::string& dir) {
  std::string partial;
  for (std::size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        throw Error(partial + ": cannot create folder (" + std::strerror(errno) + ")");
    }
    if (i < dir.size()) partial += dir[i];
  }
}

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) throw Error(path + ": cannot write");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error(path + ": cannot rename into place");
}

void write_component(const std::string& dir, const std::string& weights_name,
                     const nlohmann::json& config, const std::vector<ParamSpec>& specs,
                     std::uint64_t seed) {
  make_dir(dir);
  write_json(dir + "/config.json", config);
  io::save_safetensors(dir + "/" + weights_name, make_random_weights(specs, seed),
                       {{"format", "pt"}, {"framesmith", "tiny random weights"}});
}

TransformerConfig tiny_transformer_config() {
  TransformerConfig c;
  c.num_attention_heads = 2;
  c.attention_head_dim = 16;
  c.num_layers = 2;
  c.num_single_layers = 2;
  c.num_refiner_layers = 1;
  c.text_embed_dim = tiny::kTextHidden;
  c.pooled_projection_dim = tiny::kClipHidden;
  c.rope_axes_dim = {4, 6, 6};
  c.has_image_proj = true;
  c.image_proj_dim = tiny::kSiglipHidden;
  c.has_clean_x_embedder = true;
  return c;
}

VaeConfig tiny_vae_config() {
  VaeConfig c;
  c.block_out_channels = {16, 16, 32, 32};
  c.layers_per_block = 1;
  c.norm_num_groups = 8;
  return c;
}

}  // namespace tiny

using tiny::tiny_transformer_config;
using tiny::tiny_vae_config;

void make_tiny_model(const std::string& dir, unsigned long long seed) {
  tiny::make_dir(dir);
  {
    const TransformerConfig c = tiny_transformer_config();
    nlohmann::json j = c.to_json();
    j["_class_name"] = "HunyuanVideoTransformer3DModelPacked";
    tiny::write_component(dir + "/transformer", "diffusion_pytorch_model.safetensors", j,
                          transformer_parameter_specs(c), seed * 1000 + 1);
  }
  {
    const VaeConfig c = tiny_vae_config();
    nlohmann::json j = c.to_json();
    j["_class_name"] = "AutoencoderKLHunyuanVideo";
    tiny::write_component(dir + "/vae", "diffusion_pytorch_model.safetensors", j,
                          vae_parameter_specs(c), seed * 1000 + 2);
  }
  tiny::write_conditioning_components(dir, seed);
}

}  // namespace framesmith
