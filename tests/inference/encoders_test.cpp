// Unit tests of the conditioning encoders and the start-image preparation: FramePack's bucket
// rule (ties included), Pillow-equivalent resizing on constant pictures, refused picture sizes,
// checkpoint loading (prefixes, tolerated extra keys, errors naming the tensor), masks and
// pooling rules.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "framesmith/error.h"
#include "image/image_prep.h"
#include "io/safetensors.h"
#include "models/clip_text.h"
#include "models/llama.h"
#include "models/siglip.h"
#include "models/vae.h"
#include "models/weights.h"
#include "test_support.h"

namespace framesmith {
namespace {

using image::Bucket;
using image::Resample;

using test::error_of;
using test::TempDir;

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2);
}

// A model folder: config.json plus random weights for `specs` under `prefix`, with `extra`
// tensors added and `bad` (if named) given a wrong first dimension.
void write_model(const std::string& dir, const nlohmann::json& config,
                 const std::vector<ParamSpec>& specs, const std::string& prefix = "",
                 std::vector<std::pair<std::string, at::Tensor>> extra = {},
                 const std::string& bad = "") {
  write_json(dir + "/config.json", config);
  auto tensors = make_random_weights(specs, 7, 0.1);
  for (auto& [name, t] : tensors) {
    if (name == bad) t = at::zeros({t.size(0) + 1}, at::kFloat);
    name = prefix + name;
  }
  for (auto& e : extra) tensors.push_back(std::move(e));
  io::save_safetensors(dir + "/model.safetensors", tensors);
}

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).norm().item<double>() /
         b.to(at::kDouble).norm().item<double>();
}

// ---- Buckets ----

TEST(ImageBuckets, NearestByAspectRatio) {
  EXPECT_EQ(image::find_nearest_bucket(480, 640), (Bucket{544, 704}));
  EXPECT_EQ(image::find_nearest_bucket(720, 1280), (Bucket{480, 832}));
  EXPECT_EQ(image::find_nearest_bucket(900, 300), (Bucket{960, 416}));
  EXPECT_EQ(image::find_nearest_bucket(300, 9000), (Bucket{416, 960}));
  EXPECT_EQ(image::bucket_options(640).size(), 14u);
}

TEST(ImageBuckets, TiesGoToTheLaterBucket) {
  // Square: |h*608 - w*640| and |h*640 - w*608| are equal; bucket_tools keeps the later one.
  EXPECT_EQ(image::find_nearest_bucket(512, 512), (Bucket{640, 608}));
  EXPECT_EQ(image::find_nearest_bucket(1, 1), (Bucket{640, 608}));
  const std::vector<Bucket> list = {{100, 200}, {200, 100}, {100, 200}};
  EXPECT_EQ(image::find_nearest_bucket(50, 50, list), (Bucket{100, 200}));  // the third one
  const std::vector<Bucket> two = {{1, 1}, {2, 2}};
  EXPECT_EQ(image::find_nearest_bucket(7, 7, two), (Bucket{2, 2}));
}

TEST(ImageBuckets, UnknownResolutionIsAnError) {
  EXPECT_NE(error_of([] { image::find_nearest_bucket(480, 640, 500); }).find("500"),
            std::string::npos);
  EXPECT_THROW(image::find_nearest_bucket(0, 640), Error);
}

// ---- Resampling ----

TEST(ImageResize, ConstantImageStaysConstant) {
  const at::Tensor img = at::full({37, 53, 3}, 200, at::kByte);
  for (Resample f : {Resample::kLanczos, Resample::kBicubic, Resample::kBilinear, Resample::kBox,
                     Resample::kHamming}) {
    for (auto [w, h] : {std::pair<int, int>{101, 17}, {5, 7}, {53, 90}, {200, 37}}) {
      const at::Tensor out = image::pil_resize(img, w, h, f);
      ASSERT_EQ(out.sizes(), (at::IntArrayRef{h, w, 3}));
      EXPECT_TRUE(out.eq(200).all().item<bool>()) << "filter " << static_cast<int>(f);
    }
  }
  const at::Tensor crop = image::resize_and_center_crop(img, 608, 640);
  ASSERT_EQ(crop.sizes(), (at::IntArrayRef{640, 608, 3}));
  EXPECT_TRUE(crop.eq(200).all().item<bool>());
}

TEST(ImageResize, SameSizeIsACopyAndCropEqualsFullResize) {
  const at::Tensor img = at::randint(0, 256, {40, 30, 3}, at::kLong).to(at::kByte);
  EXPECT_TRUE(image::pil_resize(img, 30, 40, Resample::kLanczos).equal(img));
  // Computing only a window gives exactly the pixels of the full resize.
  const at::Tensor full = image::pil_resize(img, 71, 23, Resample::kLanczos);
  const at::Tensor win = image::pil_resize_crop(img, 71, 23, Resample::kLanczos, 10, 5, 40, 12);
  EXPECT_TRUE(win.equal(full.slice(0, 5, 17).slice(1, 10, 50)));
  // Parts of the box outside the image are black, as PIL's crop.
  const at::Tensor pad = image::pil_resize_crop(img, 71, 23, Resample::kLanczos, -2, 0, 10, 23);
  EXPECT_TRUE(pad.slice(1, 0, 2).eq(0).all().item<bool>());
  EXPECT_TRUE(pad.slice(1, 2, 10).equal(full.slice(1, 0, 8)));
  EXPECT_THROW(image::pil_resize(img, 10, 10, Resample::kNearest), Error);
}

TEST(ImageResize, OnePixelImageGivesAConstantCrop) {
  at::Tensor img = at::empty({1, 1, 3}, at::kByte);
  img[0][0][0] = 10;
  img[0][0][1] = 128;
  img[0][0][2] = 250;
  const Bucket b = image::find_nearest_bucket(1, 1);
  const at::Tensor crop = image::resize_and_center_crop(img, b.width, b.height);
  ASSERT_EQ(crop.sizes(), (at::IntArrayRef{b.height, b.width, 3}));
  EXPECT_TRUE(crop.select(2, 0).eq(10).all().item<bool>());
  EXPECT_TRUE(crop.select(2, 1).eq(128).all().item<bool>());
  EXPECT_TRUE(crop.select(2, 2).eq(250).all().item<bool>());
}

TEST(ImageResize, BadImagesAreErrors) {
  // 20000 x 20000 as a zero-stride view: refused from its sizes, the 1.2 GB never exists.
  const at::Tensor huge = at::zeros({1, 1, 3}, at::kByte).expand({20000, 20000, 3});
  const std::string msg = error_of([&] { image::resize_and_center_crop(huge, 608, 640); });
  EXPECT_NE(msg.find("20000x20000"), std::string::npos) << msg;
  EXPECT_THROW(image::find_nearest_bucket(20000, 20000), Error);
  EXPECT_THROW(image::preprocess_image(huge, image::ImageProcessorConfig{}), Error);
  EXPECT_THROW(image::resize_and_center_crop(at::zeros({0, 5, 3}, at::kByte), 8, 8), Error);
  EXPECT_THROW(image::resize_and_center_crop(at::zeros({5, 5, 3}, at::kFloat), 8, 8), Error);
  EXPECT_THROW(image::resize_and_center_crop(at::zeros({5, 5, 4}, at::kByte), 8, 8), Error);
  EXPECT_THROW(image::resize_and_center_crop(at::zeros({5, 5}, at::kByte), 8, 8), Error);
  EXPECT_THROW(image::resize_and_center_crop(at::Tensor(), 8, 8), Error);
  EXPECT_THROW(image::resize_and_center_crop(at::zeros({5, 5, 3}, at::kByte), 0, 8), Error);
  // Extremely elongated but allowed pictures still give the bucket's size.
  const at::Tensor strip = at::full({1, 4000, 3}, 77, at::kByte);
  const Bucket b = image::find_nearest_bucket(1, 4000);
  const at::Tensor crop = image::resize_and_center_crop(strip, b.width, b.height);
  EXPECT_EQ(crop.sizes(), (at::IntArrayRef{b.height, b.width, 3}));
  EXPECT_TRUE(crop.eq(77).all().item<bool>());
}

TEST(ImagePreprocess, RescaleAndNormalize) {
  image::ImageProcessorConfig cfg =
      image::ImageProcessorConfig::from_json(nlohmann::json{{"size", {{"height", 8}, {"width", 6}}},
                                                            {"resample", 3},
                                                            {"image_mean", {0.5, 0.5, 0.5}},
                                                            {"image_std", {0.5, 0.5, 0.5}},
                                                            {"rescale_factor", 1.0 / 255}});
  const at::Tensor px = image::preprocess_image(at::full({3, 5, 3}, 51, at::kByte), cfg);
  ASSERT_EQ(px.sizes(), (at::IntArrayRef{1, 3, 8, 6}));
  EXPECT_NEAR(px.min().item<double>(), (51 / 255.0 - 0.5) / 0.5, 1e-6);
  EXPECT_NEAR(px.max().item<double>(), (51 / 255.0 - 0.5) / 0.5, 1e-6);
  EXPECT_THROW(image::ImageProcessorConfig::from_json(nlohmann::json{{"resample", 0}}), Error);
  EXPECT_THROW(
      image::ImageProcessorConfig::from_json(nlohmann::json{{"size", {{"shortest_edge", 5}}}}),
      Error);
}

// ---- LLaMA ----

nlohmann::json tiny_llama_json() {
  return {{"model_type", "llama"},    {"hidden_size", 32},        {"intermediate_size", 48},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"num_hidden_layers", 3},
          {"vocab_size", 50},         {"rms_norm_eps", 1e-5},     {"rope_theta", 500000.0}};
}

TEST(Llama, LoadsUnderEveryPrefixAndIgnoresExtraKeys) {
  const LlamaConfig cfg = LlamaConfig::from_json(tiny_llama_json());
  const auto specs = llama_parameter_specs(cfg);
  const at::Tensor ids = at::randint(0, 50, {2, 9}, at::kLong);
  at::Tensor reference;
  for (const std::string prefix :
       {"", "model.", "language_model.model.", "model.language_model."}) {
    TempDir d;
    write_model(d.path(), tiny_llama_json(), specs, prefix,
                {{"lm_head.weight", at::zeros({50, 32})}});
    const auto m = load_llama(d.path(), at::kFloat, at::kCPU);
    const auto hs = m->hidden_states(ids);
    ASSERT_EQ(hs.size(), 4u);
    EXPECT_EQ(hs.back().sizes(), (at::IntArrayRef{2, 9, 32}));
    if (!reference.defined())
      reference = hs.back();
    else
      EXPECT_TRUE(hs.back().equal(reference)) << prefix;
    // hidden_state(-3) is hidden_states[1] of 4, computed without the later layers.
    EXPECT_TRUE(m->hidden_state(ids, at::Tensor(), -3).equal(hs[1]));
    EXPECT_THROW(m->hidden_state(ids, at::Tensor(), 4), Error);
  }
}

TEST(Llama, LlavaConfigNestsTheTextConfig) {
  const nlohmann::json j = {{"model_type", "llava"}, {"text_config", tiny_llama_json()}};
  EXPECT_EQ(LlamaConfig::from_json(j).num_key_value_heads, 2);
}

TEST(Llama, ShapeMismatchNamesTheTensor) {
  const LlamaConfig cfg = LlamaConfig::from_json(tiny_llama_json());
  TempDir d;
  write_model(d.path(), tiny_llama_json(), llama_parameter_specs(cfg), "model.", {},
              "layers.1.self_attn.k_proj.weight");
  const std::string msg = error_of([&] { load_llama(d.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find("model.layers.1.self_attn.k_proj.weight"), std::string::npos) << msg;
}

TEST(Llama, LeftPaddingMaskedAwayLeavesTokensUnchanged) {
  // RoPE is relative, so masked left padding must not change the real tokens' states.
  const LlamaConfig cfg = LlamaConfig::from_json(tiny_llama_json());
  TempDir d;
  write_model(d.path(), tiny_llama_json(), llama_parameter_specs(cfg));
  const auto m = load_llama(d.path(), at::kFloat, at::kCPU);
  const at::Tensor ids = at::randint(0, 50, {1, 6}, at::kLong);
  const at::Tensor padded = at::cat({at::zeros({1, 3}, at::kLong), ids}, 1);
  const at::Tensor mask = at::cat({at::zeros({1, 3}, at::kLong), at::ones({1, 6}, at::kLong)}, 1);
  const auto plain = m->hidden_states(ids);
  const auto masked = m->hidden_states(padded, mask);
  for (std::size_t i = 0; i < plain.size(); ++i)
    EXPECT_LT(rel_l2(masked[i].slice(1, 3, 9), plain[i]), 1e-5) << "hidden state " << i;
  EXPECT_THROW(m->hidden_states(ids, at::ones({1, 5})), Error);
  EXPECT_THROW(m->hidden_states(at::full({1, 2}, 50, at::kLong)), Error);  // id out of range
}

TEST(Llama, ConfigErrorsAndRopeScaling) {
  nlohmann::json j = tiny_llama_json();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of([&] { LlamaConfig::from_json(j); }).find("num_key_value_heads"),
            std::string::npos);
  j = tiny_llama_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_THROW(LlamaConfig::from_json(j), Error);
  // llama3: high frequencies kept, low ones divided by the factor.
  j = tiny_llama_json();
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 64}};
  LlamaConfig scaled = LlamaConfig::from_json(j);
  const at::Tensor base = llama_inv_freq(LlamaConfig::from_json(tiny_llama_json()));
  const at::Tensor inv = llama_inv_freq(scaled);
  EXPECT_FLOAT_EQ(inv[0].item<float>(), base[0].item<float>());         // wavelength 2 pi
  EXPECT_FLOAT_EQ(inv[3].item<float>(), base[3].item<float>() / 8.0f);  // wavelength >> 64
}

// ---- CLIP text ----

nlohmann::json tiny_clip_json(std::int64_t eos) {
  return {{"hidden_size", 16},      {"intermediate_size", 32},   {"num_attention_heads", 2},
          {"num_hidden_layers", 2}, {"vocab_size", 40},          {"max_position_embeddings", 10},
          {"eos_token_id", eos},    {"hidden_act", "quick_gelu"}};
}

TEST(ClipText, PoolingRules) {
  for (std::int64_t eos : {2, 39}) {
    const ClipTextConfig cfg = ClipTextConfig::from_json(tiny_clip_json(eos));
    TempDir d;
    write_model(d.path(), tiny_clip_json(eos), clip_text_parameter_specs(cfg), "",
                {{"text_model.embeddings.position_ids", at::arange(10, at::kLong).view({1, 10})}});
    const auto m = load_clip_text(d.path(), at::kFloat, at::kCPU);
    const at::Tensor ids =
        at::tensor(std::vector<std::int64_t>{38, 5,  39, 39, 7, 1, 2,  3,  4,  5,
                                             5,  38, 6,  7,  8, 9, 10, 11, 12, 13})
            .view({2, 10});
    const std::vector<std::int64_t> pos = m->pool_positions(ids);
    // Legacy (2): first maximum id; otherwise the first eos, position 0 when there is none.
    EXPECT_EQ(pos,
              eos == 2 ? (std::vector<std::int64_t>{2, 1}) : (std::vector<std::int64_t>{2, 0}));
    const ClipTextOutput out = m->forward(ids);
    EXPECT_EQ(out.last_hidden_state.sizes(), (at::IntArrayRef{2, 10, 16}));
    EXPECT_TRUE(out.pooler_output[0].equal(out.last_hidden_state[0][2]));
    EXPECT_EQ(out.hidden_states.size(), 3u);
    EXPECT_THROW(m->forward(at::zeros({1, 11}, at::kLong)), Error);  // beyond 10 positions
  }
  const ClipTextConfig legacy = ClipTextConfig::from_json(tiny_clip_json(2));
  EXPECT_EQ(legacy.eos_token_id, 2);
}

TEST(ClipText, ShapeMismatchNamesTheTensor) {
  const ClipTextConfig cfg = ClipTextConfig::from_json(tiny_clip_json(2));
  TempDir d;
  write_model(d.path(), tiny_clip_json(2), clip_text_parameter_specs(cfg), "", {},
              "text_model.encoder.layers.1.mlp.fc1.weight");
  const std::string msg = error_of([&] { load_clip_text(d.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find("text_model.encoder.layers.1.mlp.fc1.weight"), std::string::npos) << msg;
}

// ---- SigLIP ----

nlohmann::json tiny_siglip_json() {
  return {{"hidden_size", 16},      {"intermediate_size", 24}, {"num_attention_heads", 2},
          {"num_hidden_layers", 1}, {"image_size", 28},        {"patch_size", 14}};
}

TEST(Siglip, HeadKeysAreToleratedAndShapesChecked) {
  const SiglipVisionConfig cfg = SiglipVisionConfig::from_json(tiny_siglip_json());
  {
    TempDir d;
    write_model(d.path(), tiny_siglip_json(), siglip_vision_parameter_specs(cfg), "",
                {{"vision_model.head.probe", at::zeros({1, 1, 16})},
                 {"vision_model.head.attention.in_proj_weight", at::zeros({48, 16})}});
    const auto m = load_siglip_vision(d.path(), at::kFloat, at::kCPU);
    const at::Tensor out = m->forward(at::zeros({2, 3, 28, 28}));
    EXPECT_EQ(out.sizes(), (at::IntArrayRef{2, 4, 16}));
    const std::string msg = error_of([&] { m->forward(at::zeros({1, 3, 30, 28})); });
    EXPECT_NE(msg.find("pixel_values"), std::string::npos) << msg;
  }
  TempDir d;
  write_model(d.path(), tiny_siglip_json(), siglip_vision_parameter_specs(cfg), "", {},
              "vision_model.embeddings.position_embedding.weight");
  const std::string msg = error_of([&] { load_siglip_vision(d.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find("vision_model.embeddings.position_embedding.weight"), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace framesmith

namespace framesmith {
namespace {

// Config sizes of 2^63 and up arrive as unsigned JSON numbers and used to wrap to negative
// numbers in messages; they are refused as written, for every encoder and the VAE.
TEST(EncoderConfigs, HugeSizesAreRefusedAsWritten) {
  const auto message = [](auto parse, const char* key) {
    nlohmann::json j = nlohmann::json::object();
    j[key] = 9223372036854775808ull;
    try {
      parse(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  for (const std::string& m :
       {message([](const nlohmann::json& j) { return LlamaConfig::from_json(j); },
                "num_hidden_layers"),
        message([](const nlohmann::json& j) { return ClipTextConfig::from_json(j); },
                "num_hidden_layers"),
        message([](const nlohmann::json& j) { return SiglipVisionConfig::from_json(j); },
                "hidden_size"),
        message([](const nlohmann::json& j) { return VaeConfig::from_json(j); },
                "layers_per_block")}) {
    EXPECT_NE(m.find("far too large, got 9223372036854775808"), std::string::npos) << m;
    EXPECT_EQ(m.find("-9223372036854775808"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace framesmith
