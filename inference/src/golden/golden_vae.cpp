// Golden checks of the HunyuanVideo VAE: decode in diffusers' three modes, encode whole and
// spatially tiled. Tile sizes come from the case file's metadata (or the set's cases.json).
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "framesmith/error.h"
#include "golden/golden.h"
#include "models/vae.h"

namespace framesmith::golden {
namespace {

// enable_tiling(min M px, stride S px), as the metadata of the tiled output states it; else the
// set's cases.json spec "vae_tile": [M, S].
VaeTiling spatial_tiling(const Case& c, const std::string& output) {
  VaeTiling t;
  t.spatial = true;
  std::int64_t min = 0, stride = 0;
  if (c.has_meta(output)) {
    static const std::regex re(R"(min\s+(\d+)\s*px,\s*stride\s+(\d+)\s*px)");
    std::smatch m;
    const std::string text = c.meta(output);
    if (std::regex_search(text, m, re)) {
      min = std::stoll(m[1]);
      stride = std::stoll(m[2]);
    }
  }
  if (min == 0) {
    std::ifstream in(c.set_dir() + "/cases.json");
    nlohmann::json j;
    if (in) in >> j;
    const auto& tile = j.is_object() && j.contains("spec")
                           ? j["spec"].value("vae_tile", nlohmann::json())
                           : nlohmann::json();
    if (!tile.is_array() || tile.size() != 2)
      throw Error(c.name() + ": no tile sizes for \"" + output +
                  "\" in the metadata or in cases.json spec.vae_tile");
    min = tile[0].get<std::int64_t>();
    stride = tile[1].get<std::int64_t>();
  }
  t.tile_sample_min_height = t.tile_sample_min_width = min;
  t.tile_sample_stride_height = t.tile_sample_stride_width = stride;
  return t;
}

// diffusers' temporal tile sizes, taken from the metadata's description where it gives them.
void read_temporal_tiling(const Case& c, VaeTiling& t) {
  if (!c.has_meta("pixels")) return;
  static const std::regex re(R"(tiles of\s+(\d+)\s+frames.*stride\s+(\d+))");
  std::smatch m;
  const std::string text = c.meta("pixels");
  if (std::regex_search(text, m, re)) {
    t.tile_sample_min_num_frames = std::stoll(m[1]);
    t.tile_sample_stride_num_frames = std::stoll(m[2]);
  }
}

}  // namespace

std::vector<CaseResult> run_vae_decode(const Case& c) {
  const auto vae = load_vae(c.set_dir() + "/vae", at::kFloat, at::kCPU);
  // FramePack's vae_decode: latents / scaling_factor, then decode.
  const at::Tensor z = c.in("latents") / vae->config().scaling_factor;
  VaeTiling temporal;
  read_temporal_tiling(c, temporal);
  std::vector<CaseResult> results;
  if (c.has_out("pixels"))
    results.push_back(
        compare(c.name(), "pixels", vae->decode(z, temporal), c.out("pixels"), kTolForward));
  if (c.has_out("pixels_whole")) {
    VaeTiling whole = temporal;
    whole.temporal = false;
    results.push_back(compare(c.name(), "pixels_whole", vae->decode(z, whole),
                              c.out("pixels_whole"), kTolForward));
  }
  if (c.has_out("pixels_tiled")) {
    VaeTiling tiled = spatial_tiling(c, "pixels_tiled");
    tiled.tile_sample_min_num_frames = temporal.tile_sample_min_num_frames;
    tiled.tile_sample_stride_num_frames = temporal.tile_sample_stride_num_frames;
    results.push_back(compare(c.name(), "pixels_tiled", vae->decode(z, tiled),
                              c.out("pixels_tiled"), kTolForward));
  }
  if (results.empty()) throw Error(c.name() + ": no out.pixels* tensor to compare");
  return results;
}

std::vector<CaseResult> run_vae_encode(const Case& c) {
  const auto vae = load_vae(c.set_dir() + "/vae", at::kFloat, at::kCPU);
  const at::Tensor image = c.in("image");
  const VaePosterior post = vae->encode(image);
  std::vector<CaseResult> results;
  if (c.has_out("mean"))
    results.push_back(compare(c.name(), "mean", post.mean, c.out("mean"), kTolForward));
  if (c.has_out("std"))
    results.push_back(compare(c.name(), "std", post.std(), c.out("std"), kTolForward));
  if (c.has_out("latent_mode_scaled"))
    results.push_back(compare(c.name(), "latent_mode_scaled",
                              post.mode() * vae->config().scaling_factor,
                              c.out("latent_mode_scaled"), kTolForward));
  if (c.has_out("mean_tiled")) {
    const VaePosterior tiled = vae->encode(image, spatial_tiling(c, "mean_tiled"));
    results.push_back(
        compare(c.name(), "mean_tiled", tiled.mean, c.out("mean_tiled"), kTolForward));
  }
  if (results.empty()) throw Error(c.name() + ": no out.* tensor to compare");
  return results;
}

}  // namespace framesmith::golden
