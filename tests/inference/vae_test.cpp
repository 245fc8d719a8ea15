// Unit tests of the HunyuanVideo VAE port: shapes and frame counts of every decode/encode mode,
// diffusers' tiling choices, the checkpoint key list, and errors that name the offending tensor.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "framesmith/error.h"
#include "io/safetensors.h"
#include "models/vae.h"
#include "models/weights.h"
#include "test_support.h"

namespace framesmith {
namespace {

// A VAE small enough for quick CPU tests, keeping the real layout (4 blocks, 8x / 4x).
VaeConfig tiny_config() {
  VaeConfig c;
  c.latent_channels = 4;
  c.block_out_channels = {8, 8, 16, 16};
  c.layers_per_block = 1;
  c.norm_num_groups = 4;
  return c;
}

using test::error_of;
using test::TempDir;

// Writes config.json and a checkpoint of `tensors` into `dir`.
void write_model(const std::string& dir, const VaeConfig& cfg,
                 const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::ofstream(dir + "/config.json") << cfg.to_json().dump(2);
  io::save_safetensors(dir + "/diffusion_pytorch_model.safetensors", tensors);
}

std::vector<std::pair<std::string, at::Tensor>> random_tensors(const VaeConfig& cfg) {
  return make_random_weights(vae_parameter_specs(cfg), 1234, 0.1);
}

// One random tiny VAE shared by the tests (loading is cheap, building it once keeps them short).
class VaeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_model(dir_->path(), tiny_config(), random_tensors(tiny_config()));
    vae_ = load_vae(dir_->path(), at::kFloat, at::kCPU);
  }
  static void TearDownTestSuite() {
    vae_.reset();
    delete dir_;
  }
  static at::Tensor latents(std::int64_t t, std::int64_t h, std::int64_t w) {
    at::manual_seed(t * 100 + h * 10 + w);
    return at::randn({1, 4, t, h, w});
  }
  static TempDir* dir_;
  static std::shared_ptr<Vae> vae_;
};
TempDir* VaeTest::dir_ = nullptr;
std::shared_ptr<Vae> VaeTest::vae_;

VaeTiling whole() {
  VaeTiling t;
  t.temporal = false;
  return t;
}

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).norm().item<double>() / b.norm().item<double>();
}

TEST_F(VaeTest, WholeDecodeGivesOnePlusFourFramesPerLatent) {
  for (std::int64_t t : {1, 2, 3, 5}) {
    const at::Tensor px = vae_->decode(latents(t, 2, 3), whole());
    EXPECT_EQ(px.sizes(), (std::vector<std::int64_t>{1, 3, 1 + 4 * (t - 1), 16, 24})) << "T=" << t;
  }
}

TEST_F(VaeTest, TemporalTilingKeepsFrameCount) {
  for (std::int64_t t : {5, 6, 7, 8, 9, 10}) {
    const at::Tensor px = vae_->decode(latents(t, 1, 2));
    EXPECT_EQ(px.size(2), 1 + 4 * (t - 1)) << "T=" << t;
    EXPECT_EQ(px.size(3), 8);
    EXPECT_EQ(px.size(4), 16);
  }
}

TEST_F(VaeTest, TemporalTilingAppliesOnlyAboveFourLatents) {
  const at::Tensor z4 = latents(4, 2, 2);
  EXPECT_TRUE(at::equal(vae_->decode(z4), vae_->decode(z4, whole())));
  const at::Tensor z6 = latents(6, 2, 2);
  EXPECT_GT(rel_diff(vae_->decode(z6), vae_->decode(z6, whole())), 1e-4);
}

TEST(VaeTiles, FollowDiffusersTemporalTiles) {
  auto as_pairs = [](const std::vector<VaeTemporalTile>& tiles) {
    std::vector<std::pair<std::int64_t, std::int64_t>> r;
    for (const auto& t : tiles) r.emplace_back(t.begin, t.end);
    return r;
  };
  using P = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(as_pairs(vae_decode_tiles(9, {}, 4)), (P{{0, 5}, {3, 8}, {6, 9}}));
  EXPECT_EQ(as_pairs(vae_decode_tiles(7, {}, 4)), (P{{0, 5}, {3, 7}, {6, 7}}));
  EXPECT_EQ(as_pairs(vae_decode_tiles(4, {}, 4)), (P{{0, 4}}));
  VaeTiling off;
  off.temporal = false;
  EXPECT_EQ(as_pairs(vae_decode_tiles(9, off, 4)), (P{{0, 9}}));
}

TEST_F(VaeTest, TiledDecodeByPiecesEqualsDecode) {
  // A memory governor decodes tile by tile and joins progressively: same result as decode().
  const at::Tensor z = latents(9, 2, 2);
  const VaeTiling t;
  VaeTemporalAssembler join(t.tile_sample_min_num_frames - t.tile_sample_stride_num_frames,
                            t.tile_sample_stride_num_frames, 1 + 4 * (z.size(2) - 1));
  std::vector<at::Tensor> parts;
  for (const auto& tile : vae_decode_tiles(z.size(2), t, 4)) {
    join.add(vae_->decode_tile(z.narrow(2, tile.begin, tile.end - tile.begin)));
    parts.push_back(join.take_ready());
  }
  parts.push_back(join.finish());
  EXPECT_TRUE(at::equal(at::cat(parts, 2), vae_->decode(z)));
}

TEST_F(VaeTest, SpatialTilingQuirkComparesWidthWithStride) {
  // diffusers' _decode tiles when width > stride/8 or height > min/8 (32 px tiles, 24 px stride:
  // latent min 4, stride 3).
  VaeTiling t = whole();
  t.spatial = true;
  t.tile_sample_min_height = t.tile_sample_min_width = 32;
  t.tile_sample_stride_height = t.tile_sample_stride_width = 24;
  const at::Tensor wide = latents(2, 3, 4);  // width 4 > 3: tiled
  const at::Tensor tall = latents(2, 4, 3);  // height 4 == min: not tiled
  const at::Tensor wide_px = vae_->decode(wide, t);
  EXPECT_EQ(wide_px.sizes(), (std::vector<std::int64_t>{1, 3, 5, 24, 32}));
  EXPECT_TRUE(at::equal(wide_px, vae_->decode_spatial_tiled(wide, t)));
  EXPECT_GT(rel_diff(wide_px, vae_->decode(wide, whole())), 1e-4);
  EXPECT_TRUE(at::equal(vae_->decode(tall, t), vae_->decode(tall, whole())));
  // Temporal + spatial tiles.
  VaeTiling both = t;
  both.temporal = true;
  EXPECT_EQ(vae_->decode(latents(6, 5, 5), both).sizes(),
            (std::vector<std::int64_t>{1, 3, 21, 40, 40}));
}

TEST_F(VaeTest, EncodeShapesInEveryMode) {
  at::manual_seed(5);
  const at::Tensor img = at::rand({1, 3, 5, 48, 40}) * 2 - 1;
  const VaePosterior p = vae_->encode(img);
  EXPECT_EQ(p.mean.sizes(), (std::vector<std::int64_t>{1, 4, 2, 6, 5}));
  EXPECT_EQ(p.logvar.sizes(), p.mean.sizes());
  EXPECT_TRUE(at::equal(p.std(), at::exp(0.5 * p.logvar)));
  VaeTiling t;
  t.spatial = true;
  t.tile_sample_min_height = t.tile_sample_min_width = 32;
  t.tile_sample_stride_height = t.tile_sample_stride_width = 24;
  const VaePosterior tiled = vae_->encode(img, t);
  EXPECT_EQ(tiled.mean.sizes(), p.mean.sizes());
  EXPECT_GT(rel_diff(tiled.mean, p.mean), 1e-4);
  // More than 16 frames: temporal tiles of 17 frames every 12.
  const at::Tensor clip = at::rand({1, 3, 21, 8, 8}) * 2 - 1;
  EXPECT_EQ(vae_->encode(clip).mean.sizes(), (std::vector<std::int64_t>{1, 4, 6, 1, 1}));
  EXPECT_EQ(vae_->encode(clip, whole()).mean.sizes(), (std::vector<std::int64_t>{1, 4, 6, 1, 1}));
}

// The message of the Error thrown by `f` (empty if none).
TEST_F(VaeTest, BadInputsNameTheTensor) {
  EXPECT_NE(error_of([&] {
              vae_->decode(at::zeros({1, 5, 2, 2, 2}));
            }).find("z"),
            std::string::npos);
  EXPECT_NE(error_of([&] { vae_->decode(at::zeros({1, 4, 2, 2})); }).find("z"), std::string::npos);
  EXPECT_NE(error_of([&] {
              vae_->decode(at::zeros({1, 4, 2, 2, 2}, at::kLong));
            }).find("z"),
            std::string::npos);
  // One pass takes any frame count (FramePack-Studio encodes clips in 16-frame batches: 16 -> 4
  // latents); diffusers' temporal tiles (above 16 frames) need 1 + 4k.
  EXPECT_EQ(vae_->encode(at::zeros({1, 3, 2, 16, 16})).mean.size(2), 1);
  EXPECT_EQ(vae_->encode(at::zeros({1, 3, 8, 16, 16})).mean.size(2), 2);
  EXPECT_NE(error_of([&] {
              vae_->encode(at::zeros({1, 3, 18, 16, 16}));
            }).find("pixels"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              vae_->encode(at::zeros({1, 3, 1, 12, 16}));
            }).find("pixels"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              vae_->encode(at::zeros({1, 4, 1, 16, 16}));
            }).find("pixels"),
            std::string::npos);
  VaeTiling bad;
  bad.spatial = true;
  bad.tile_sample_stride_width = 4;
  EXPECT_NE(error_of([&] { vae_->decode(latents(1, 2, 2), bad); }).find("tile_sample_stride_width"),
            std::string::npos);
}

TEST(VaeLoad, MissingTensorIsNamed) {
  TempDir dir;
  auto tensors = random_tensors(tiny_config());
  const std::string gone = "decoder.up_blocks.1.resnets.0.conv2.conv.weight";
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [&](const auto& p) { return p.first == gone; }),
                tensors.end());
  write_model(dir.path(), tiny_config(), tensors);
  const std::string msg = error_of([&] { load_vae(dir.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find(gone), std::string::npos) << msg;
}

TEST(VaeLoad, MisshapenTensorIsNamed) {
  TempDir dir;
  auto tensors = random_tensors(tiny_config());
  const std::string odd = "encoder.mid_block.attentions.0.to_k.weight";
  for (auto& p : tensors)
    if (p.first == odd) p.second = at::zeros({16, 8});
  write_model(dir.path(), tiny_config(), tensors);
  const std::string msg = error_of([&] { load_vae(dir.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find(odd), std::string::npos) << msg;
}

TEST(VaeLoad, WithoutMidAttentionHasNoAttentionKeys) {
  VaeConfig c = tiny_config();
  c.mid_block_add_attention = false;
  for (const ParamSpec& s : vae_parameter_specs(c))
    EXPECT_EQ(s.name.find("attentions"), std::string::npos) << s.name;
  TempDir dir;
  write_model(dir.path(), c, random_tensors(c));
  const auto vae = load_vae(dir.path(), at::kFloat, at::kCPU);
  EXPECT_EQ(vae->decode(at::randn({1, 4, 2, 1, 1})).sizes(),
            (std::vector<std::int64_t>{1, 3, 5, 8, 8}));
}

TEST(VaeSpecs, MatchTheReferenceCheckpointExactly) {
  const std::string dir = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a/vae";
  std::ifstream in(dir + "/config.json");
  nlohmann::json j;
  in >> j;
  const VaeConfig cfg = VaeConfig::from_json(j);
  const io::TensorStore store = io::TensorStore::open(dir);
  const std::vector<ParamSpec> specs = vae_parameter_specs(cfg);
  EXPECT_TRUE(check_specs(store, specs).empty());
  std::set<std::string> spec_names;
  for (const auto& s : specs) spec_names.insert(s.name);
  const std::vector<std::string> names = store.names();
  EXPECT_EQ(spec_names, std::set<std::string>(names.begin(), names.end()));
  EXPECT_EQ(spec_names.size(), specs.size());  // no duplicates
}

TEST(VaeConfigJson, RoundTripsAndValidates) {
  const VaeConfig c = tiny_config();
  const VaeConfig back = VaeConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  // Missing keys take diffusers' defaults.
  const VaeConfig def = VaeConfig::from_json(nlohmann::json::object());
  EXPECT_EQ(def.block_out_channels, (std::vector<std::int64_t>{128, 256, 512, 512}));
  EXPECT_DOUBLE_EQ(def.scaling_factor, 0.476986);

  auto bad = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = c.to_json();
    j[key] = v;
    return error_of([&] { VaeConfig::from_json(j); });
  };
  EXPECT_NE(bad("latent_channels", "16").find("latent_channels"), std::string::npos);
  EXPECT_NE(bad("block_out_channels", {8, 6, 16, 16}).find("block_out_channels"),
            std::string::npos);
  EXPECT_NE(bad("temporal_compression_ratio", 8).find("temporal_compression_ratio"),
            std::string::npos);
  EXPECT_NE(bad("up_block_types", {"UpDecoderBlock2D"}).find("up_block_types"), std::string::npos);
  EXPECT_NE(bad("act_fn", "gelu").find("act_fn"), std::string::npos);
  EXPECT_NE(bad("_class_name", "AutoencoderKL").find("_class_name"), std::string::npos);
}

}  // namespace
}  // namespace framesmith
