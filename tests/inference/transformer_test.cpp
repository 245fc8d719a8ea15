// Unit tests of the packed transformer's parts: chunked attention, checkpoint checks, TeaCache.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>

#include "framesmith/error.h"
#include "io/safetensors.h"
#include "models/attention.h"
#include "models/transformer_packed.h"
#include "models/weights.h"
#include "support/transformer_inputs.h"

namespace framesmith {
namespace {

at::Tensor plain_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& mask) {
  at::Tensor w = at::matmul(q.to(at::kDouble), k.to(at::kDouble).transpose(-2, -1)) /
                 std::sqrt(static_cast<double>(q.size(-1)));
  if (mask.defined()) w = w.masked_fill(mask.logical_not(), -INFINITY);
  return at::matmul(at::softmax(w, -1), v.to(at::kDouble));
}

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  return ((x - y).norm() / y.norm()).item<double>();
}

TEST(Attention, ChunkedEqualsPlainSoftmax) {
  at::manual_seed(1);
  const at::Tensor q = at::randn({2, 3, 37, 8}), k = at::randn({2, 3, 29, 8}),
                   v = at::randn({2, 3, 29, 8});
  const at::Tensor key_mask =
      (at::rand({2, 1, 1, 29}) > 0.3)
          .index_put_({at::indexing::Slice(), 0, 0, 0}, true);  // every row keeps a key
  const at::Tensor full_mask =
      (at::rand({2, 1, 37, 29}) > 0.5)
          .index_put_({at::indexing::Slice(), 0, at::indexing::Slice(), 3}, true);
  for (const at::Tensor& mask : {at::Tensor(), key_mask, full_mask}) {
    const at::Tensor expected = plain_attention(q, k, v, mask);
    for (std::int64_t chunk : {1, 5, 16, 36, 37, 100}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (mask.defined() ? " masked" : ""));
      EXPECT_LT(rel_l2(attention_chunked(q, k, v, chunk, mask), expected), 1e-6);
    }
    // The path the model takes: SDPA on LibTorch 2.x (one call, or one per query chunk as the
    // OOM ladder's rungs ask), the chunked softmax on 1.13.
    for (std::int64_t chunk : {1, 7, 37, 100}) {
      SCOPED_TRACE("attention(), chunk " + std::to_string(chunk) +
                   (mask.defined() ? " masked" : ""));
      EXPECT_LT(rel_l2(attention(q, k, v, chunk, mask), expected), 1e-6);
    }
  }
}

TEST(Attention, HalfPrecisionIsWidened) {
  at::manual_seed(2);
  const at::Tensor q = at::randn({1, 2, 19, 16}), k = at::randn({1, 2, 19, 16}),
                   v = at::randn({1, 2, 19, 16});
  const at::Tensor out =
      attention_chunked(q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), 4);
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  EXPECT_LT(rel_l2(out, plain_attention(q, k, v, at::Tensor())), 2e-2);
  // bf16 through the model's own path (SDPA's CPU kernels on 2.x), whole and chunked.
  for (std::int64_t chunk : {4, 19}) {
    const at::Tensor a =
        attention(q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), chunk);
    EXPECT_EQ(a.scalar_type(), at::kBFloat16);
    EXPECT_LT(rel_l2(a, plain_attention(q, k, v, at::Tensor())), 2e-2);
  }
}

TEST(Attention, RejectsBadArguments) {
  const at::Tensor q = at::randn({1, 2, 4, 8}), k = at::randn({1, 2, 5, 6});
  EXPECT_THROW(attention_chunked(q, k, k, 4), Error);
  EXPECT_THROW(attention_chunked(q, q, q, 0), Error);
}

TransformerConfig tiny_config() {
  TransformerConfig c;
  c.num_attention_heads = 2;
  c.attention_head_dim = 16;
  c.num_layers = 1;
  c.num_single_layers = 1;
  c.num_refiner_layers = 1;
  c.text_embed_dim = 8;
  c.pooled_projection_dim = 8;
  c.rope_axes_dim = {4, 6, 6};
  c.has_image_proj = true;
  c.image_proj_dim = 8;
  c.has_clean_x_embedder = true;
  return c;
}

TEST(TransformerConfig, DefaultsAreFramePack) {
  const TransformerConfig c = TransformerConfig::from_json(nlohmann::json::object());
  EXPECT_EQ(c.inner_dim(), 3072);
  EXPECT_EQ(c.num_layers, 20);
  EXPECT_EQ(c.num_single_layers, 40);
  EXPECT_EQ(c.rope_axes_dim[1], 56);
  EXPECT_DOUBLE_EQ(c.rope_theta, 256.0);
}

TEST(TransformerConfig, RoundTripAndValidation) {
  const TransformerConfig c = tiny_config();
  const TransformerConfig d = TransformerConfig::from_json(c.to_json());
  EXPECT_EQ(d.to_json(), c.to_json());
  nlohmann::json j = c.to_json();
  j["rope_axes_dim"] = {4, 6, 8};  // sums to 18, not 16
  EXPECT_THROW(TransformerConfig::from_json(j), Error);
  j = c.to_json();
  j["num_attention_heads"] = "two";
  EXPECT_THROW(TransformerConfig::from_json(j), Error);
  j = c.to_json();
  j["qk_norm"] = "layer_norm";
  EXPECT_THROW(TransformerConfig::from_json(j), Error);
}

// A damaged config is one clear line: num_layers 100000 once listed 3.2 million missing tensors,
// and 2^63 was reported as -9223372036854775808.
TEST(TransformerConfig, AbsurdSizesAreRefusedAsWritten) {
  const auto message = [](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = tiny_config().to_json();
    j[key] = value;
    try {
      TransformerConfig::from_json(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("num_layers", 100000).find("\"num_layers\" must be at most 1024, got 100000"),
            std::string::npos);
  const std::string huge = message("num_layers", 9223372036854775808ull);
  EXPECT_NE(huge.find("9223372036854775808"), std::string::npos) << huge;
  EXPECT_EQ(huge.find("-9223372036854775808"), std::string::npos) << huge;
  EXPECT_NE(message("num_attention_heads", 1e300).find("must be an integer"), std::string::npos);
  EXPECT_NE(message("attention_head_dim", 1 << 20).find("at most"), std::string::npos);
}

TEST(TransformerSpecs, ProblemListsAreCapped) {
  std::vector<std::string> problems;
  for (int i = 0; i < 3200000 / 1000; ++i)
    problems.push_back("missing tensor \"x" + std::to_string(i) + "\"");
  problems.push_back("tensor \"y\" has shape [1], config implies [2]");
  const std::vector<std::string> capped = cap_problems(problems);
  ASSERT_EQ(capped.size(), 21u);
  EXPECT_EQ(capped[0], problems[0]);
  EXPECT_EQ(capped.back(), "... and 3181 more (3180 of them missing tensors)");
  EXPECT_EQ(cap_problems({"a", "b"}).size(), 2u);
}

TEST(TransformerSpecs, MatchReferenceCheckpointExactly) {
  const std::string dir = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a/transformer";
  std::ifstream f(dir + "/config.json");
  const TransformerConfig cfg = TransformerConfig::from_json(nlohmann::json::parse(f));
  const io::TensorStore store = io::TensorStore::open(dir);
  std::set<std::string> spec_names;
  for (const ParamSpec& s : transformer_parameter_specs(cfg)) spec_names.insert(s.name);
  const std::vector<std::string> names = store.names();
  EXPECT_EQ(spec_names, std::set<std::string>(names.begin(), names.end()));
  EXPECT_TRUE(check_specs(store, transformer_parameter_specs(cfg)).empty());
}

// A temporary model folder with random weights, edited by `edit` before saving.
class TinyModel : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/framesmith-transformer-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unlink((dir_ + "/config.json").c_str());
    ::unlink((dir_ + "/diffusion_pytorch_model.safetensors").c_str());
    ::rmdir(dir_.c_str());
  }
  void write(const TransformerConfig& cfg,
             const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
    auto tensors = make_random_weights(transformer_parameter_specs(cfg), 7, 0.1);
    if (edit) edit(tensors);
    io::save_safetensors(dir_ + "/diffusion_pytorch_model.safetensors", tensors);
    std::ofstream(dir_ + "/config.json") << cfg.to_json().dump(2);
  }
  std::string dir_;
};

std::string load_error(const std::string& dir) {
  try {
    load_transformer(dir, at::kFloat, at::kCPU);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(TinyModel, MisShapedTensorIsNamed) {
  write(tiny_config(), [](auto& t) {
    for (auto& p : t)
      if (p.first == "single_transformer_blocks.0.proj_out.weight") p.second = at::zeros({32, 7});
  });
  const std::string msg = load_error(dir_);
  EXPECT_NE(msg.find("single_transformer_blocks.0.proj_out.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 7]"), std::string::npos) << msg;
}

TEST_F(TinyModel, MissingTensorIsNamed) {
  write(tiny_config(), [](auto& t) {
    t.erase(std::remove_if(t.begin(), t.end(),
                           [](const auto& p) {
                             return p.first == "transformer_blocks.0.attn.norm_added_k.weight";
                           }),
            t.end());
  });
  const std::string msg = load_error(dir_);
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("transformer_blocks.0.attn.norm_added_k.weight"), std::string::npos) << msg;
}

TEST_F(TinyModel, ForwardShapesAndBatchEquivalence) {
  const TransformerConfig cfg = tiny_config();
  write(cfg, nullptr);
  auto model = load_transformer(dir_, at::kFloat, at::kCPU);
  TransformerInputs in = test_support::random_transformer_inputs(cfg, 5);
  const at::Tensor one = model->forward(in);
  EXPECT_EQ(one.sizes(), in.hidden_states.sizes());
  EXPECT_EQ(one.scalar_type(), at::kFloat);
  // Batch 2 of the same sample, the second with extra padding: masks must give the same result
  // as batch 1's cropping.
  TransformerInputs two = in;
  const auto dup = [](const at::Tensor& t) { return at::cat({t, t}, 0); };
  for (at::Tensor* t : {&two.hidden_states, &two.timestep, &two.pooled_projections, &two.guidance,
                        &two.latent_indices, &two.clean_latents, &two.clean_latent_indices,
                        &two.clean_latents_2x, &two.clean_latent_indices_2x, &two.clean_latents_4x,
                        &two.clean_latent_indices_4x, &two.image_embeddings})
    *t = dup(*t);
  two.encoder_hidden_states =
      at::cat({in.encoder_hidden_states, at::randn({1, 10, cfg.text_embed_dim})}, 0);
  two.encoder_hidden_states.narrow(0, 1, 1).narrow(1, 0, 6).copy_(
      in.encoder_hidden_states.narrow(1, 0, 6));
  two.encoder_attention_mask =
      at::cat({in.encoder_attention_mask, at::arange(10).lt(6).unsqueeze(0)}, 0);
  const at::Tensor both = model->forward(two);
  EXPECT_LT(rel_l2(both.narrow(0, 0, 1), one), 1e-5);
  EXPECT_LT(rel_l2(both.narrow(0, 1, 1), one), 1e-5);
}

// The modules the memory governor places: every checkpoint key exactly once, in checkpoint order,
// announced in that order by a forward, and swapping a module's tensors for copies (what
// streaming does) gives the same result.
TEST_F(TinyModel, ModulesCoverEveryKeyInForwardOrder) {
  const TransformerConfig cfg = tiny_config();
  write(cfg, nullptr);
  auto model = load_transformer(dir_, at::kFloat, at::kCPU);
  std::vector<std::string> keys;
  for (int i = 0; i < model->num_modules(); ++i)
    for (const auto& [key, tensor] : model->module_tensors(i)) {
      EXPECT_EQ(key.rfind(model->module_name(i) + ".", 0), 0u) << key;
      EXPECT_TRUE(tensor->defined()) << key;
      keys.push_back(key);
    }
  std::vector<std::string> expected;
  for (const ParamSpec& p : transformer_parameter_specs(cfg)) expected.push_back(p.name);
  EXPECT_EQ(keys, expected);
  EXPECT_EQ(model->num_modules(), 5 + model->num_blocks() + 2);
  EXPECT_EQ(model->module_name(model->first_block_module()), "transformer_blocks.0");
  EXPECT_EQ(model->module_name(model->num_modules() - 1), "proj_out");
  EXPECT_THROW(model->module_tensors(model->num_modules()), Error);

  const TransformerInputs in = test_support::random_transformer_inputs(cfg, 5);
  const at::Tensor reference = model->forward(in);
  std::vector<int> order;
  std::vector<at::Tensor> originals;
  model->before_module = [&](int i) {
    order.push_back(i);
    for (auto& [key, tensor] : model->module_tensors(i)) {
      originals.push_back(*tensor);
      *tensor = tensor->clone();  // a "device copy"
    }
  };
  const at::Tensor swapped = model->forward(in);
  model->before_module = nullptr;
  std::vector<int> all(static_cast<std::size_t>(model->num_modules()));
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(order, all);
  // To float32 rounding, not bit for bit: MKL (LibTorch 2.x's CPU BLAS) may take another kernel
  // for the copies' alignment than for the mapped originals'. A module left unread, or read
  // from the wrong tensor, changes the output by orders of magnitude more.
  EXPECT_LT(rel_l2(swapped, reference), 1e-6);
}

// bfloat16 weights (FramePack's real dtype) run through every op and stay near float32.
TEST_F(TinyModel, BFloat16ForwardStaysClose) {
  const TransformerConfig cfg = tiny_config();
  write(cfg, nullptr);
  const TransformerInputs in = test_support::random_transformer_inputs(cfg, 5);
  const at::Tensor f32 = load_transformer(dir_, at::kFloat, at::kCPU)->forward(in);
  const at::Tensor bf16 = load_transformer(dir_, at::kBFloat16, at::kCPU)->forward(in);
  EXPECT_EQ(bf16.scalar_type(), at::kFloat);
  EXPECT_LT(rel_l2(bf16, f32), 5e-2);
}

// Which forward calls ran the blocks, seen through before_module: a computing step announces the
// last block, a reusing one never gets there.
std::vector<bool> teacache_pattern(PackedTransformer& model, const TransformerInputs& in, int steps,
                                   double thresh) {
  model.initialize_teacache(true, steps, thresh);
  bool ran = false;
  const int last_block = model.first_block_module() + model.num_blocks() - 1;
  model.before_module = [&](int i) { ran |= i == last_block; };
  std::vector<bool> computed;
  for (int s = 0; s < steps; ++s) {
    ran = false;
    TransformerInputs step = in;
    step.hidden_states = in.hidden_states + 1e-4 * s;  // near-constant input
    model.forward(step);
    computed.push_back(ran);
  }
  model.before_module = nullptr;
  return computed;
}

TEST_F(TinyModel, TeaCacheSkipsButNeverFirstOrLast) {
  const TransformerConfig cfg = tiny_config();
  write(cfg, nullptr);
  auto model = load_transformer(dir_, at::kFloat, at::kCPU);
  const TransformerInputs in = test_support::random_transformer_inputs(cfg, 5);
  const at::Tensor reference = model->forward(in);

  // Threshold out of reach: only the first and last steps compute.
  std::vector<bool> p = teacache_pattern(*model, in, 6, 1e9);
  EXPECT_EQ(p, (std::vector<bool>{true, false, false, false, false, true}));
  // 0.15: each near-zero change adds ~0.096 (the polynomial's constant), so every second step
  // computes.
  p = teacache_pattern(*model, in, 6, 0.15);
  EXPECT_EQ(p, (std::vector<bool>{true, false, true, false, true, true}));

  // A saved TeaCache state, restored, makes the same decisions again (what a retried step does).
  model->initialize_teacache(true, 6, 0.15);
  TransformerInputs step = in;
  model->forward(step);
  const PackedTransformer::CacheState saved = model->cache_state();
  step.hidden_states = in.hidden_states + 1e-4;
  const at::Tensor first_try = model->forward(step);
  model->forward(step);  // state advanced twice
  model->restore_cache_state(saved);
  EXPECT_TRUE(at::equal(model->forward(step), first_try));
  EXPECT_EQ(model->teacache_state().count, saved.tea.count + 1);

  // A skipped step reuses the residual: with a constant input it reproduces the full result.
  model->initialize_teacache(true, 4, 1e9);
  model->forward(in);
  EXPECT_LT(rel_l2(model->forward(in), reference), 1e-6);
  // Off: every call computes.
  model->initialize_teacache(false);
  int blocks = 0;
  model->before_module = [&](int i) {
    blocks +=
        i >= model->first_block_module() && i < model->first_block_module() + model->num_blocks();
  };
  model->forward(in);
  model->forward(in);
  EXPECT_EQ(blocks, 2 * model->num_blocks());
}

// FramePack-Studio's calibration tables, picked by the nearest resolution group and step count
// (the first of equals), mapped to other step counts by nearest index.
TEST(MagCache, RatiosAreTheNearestCalibration) {
  MagCacheRatios r = magcache_ratios(MagCacheFamily::kOriginal, 640, 640, 25);
  ASSERT_EQ(r.ratios.size(), 25u);
  EXPECT_EQ(r.ratios[0], 1.0);
  EXPECT_EQ(r.ratios[1], 1.30469);
  EXPECT_NE(r.description.find("resolution group 640"), std::string::npos) << r.description;
  // 704 px lies as near 768 as 640: the first group listed (768) is taken.
  EXPECT_NE(magcache_ratios(MagCacheFamily::kOriginal, 704, 704, 25).description.find("group 768"),
            std::string::npos);
  // F1 has its own tables; 10 steps map the 25-step table by round(i * 24 / 9).
  const MagCacheRatios f1 = magcache_ratios(MagCacheFamily::kF1, 128, 128, 10);
  const MagCacheRatios f1_25 = magcache_ratios(MagCacheFamily::kF1, 128, 128, 25);
  ASSERT_EQ(f1.ratios.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(f1.ratios[i], f1_25.ratios[std::size_t(std::nearbyint(i * 24.0 / 9.0))]) << i;
  EXPECT_NE(f1.ratios, magcache_ratios(MagCacheFamily::kOriginal, 128, 128, 10).ratios);
  EXPECT_EQ(magcache_ratios(MagCacheFamily::kOriginal, 640, 640, 1).ratios,
            std::vector<double>{r.ratios.back()});  // one step: the table's last ratio
  EXPECT_EQ(magcache_ratios(MagCacheFamily::kOriginal, 640, 640, 50).ratios.size(), 50u);
  EXPECT_THROW(magcache_ratios(MagCacheFamily::kOriginal, 640, 640, 0), Error);
}

// The decision alone: the retained first steps compute, skips stop at max_consecutive_skips and
// at the accumulated error, and a new section starts afresh.
TEST(MagCache, DecisionsFollowTheRatios) {
  MagCacheState s;
  s.enabled = true;
  s.num_steps = 8;
  s.ratios = std::vector<double>(8, 1.01);  // each step adds ~0.01, 0.02, ... of error
  s.settings = {0.1, 2, 0.25};
  std::vector<bool> skipped;
  for (int i = 0; i < 16; ++i) skipped.push_back(magcache_should_skip(s));
  // Steps 0-1 retained; then skip, skip, compute (3 in a row would be over 2), ... per section.
  const std::vector<bool> section = {false, false, true, true, false, true, true, false};
  std::vector<bool> expected = section;
  expected.insert(expected.end(), section.begin(), section.end());
  EXPECT_EQ(skipped, expected);
  // A ratio more than 0.06 from 1 is never skipped, however much error budget is left.
  s = MagCacheState();
  s.num_steps = 4;
  s.ratios = {1.0, 1.07, 1.07, 1.07};
  s.settings = {100.0, 10, 0.0};
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(magcache_should_skip(s)) << i;
}

// In the forward: a skipped call adds the last computed residual (with a constant input it
// reproduces the full result), and a saved state restored decides the same again.
TEST_F(TinyModel, MagCacheSkipsWithTheLastResidual) {
  const TransformerConfig cfg = tiny_config();
  write(cfg, nullptr);
  auto model = load_transformer(dir_, at::kFloat, at::kCPU);
  const TransformerInputs in = test_support::random_transformer_inputs(cfg, 5);
  const at::Tensor reference = model->forward(in);
  model->initialize_magcache(true, std::vector<double>(4, 1.0), 4, {1e9, 10, 0.0});
  int blocks = 0;
  const int last_block = model->first_block_module() + model->num_blocks() - 1;
  model->before_module = [&](int i) { blocks += i == last_block; };
  model->forward(in);  // step 0 always computes
  const PackedTransformer::CacheState saved = model->cache_state();
  const at::Tensor skipped = model->forward(in);
  EXPECT_EQ(blocks, 1);
  EXPECT_LT(rel_l2(skipped, reference), 1e-6);
  model->restore_cache_state(saved);
  EXPECT_TRUE(at::equal(model->forward(in), skipped));
  EXPECT_EQ(blocks, 1);
  // The retried call is counted once.
  EXPECT_EQ(model->computed_calls(), 1);
  EXPECT_EQ(model->reused_calls(), 1);
  EXPECT_EQ(model->magcache_state().decision.step, saved.mag.decision.step + 1);
  EXPECT_THROW(model->initialize_magcache(true, {1.0, 1.0}, 3), Error);  // a ratio per step
  model->initialize_magcache(false);
  model->forward(in);
  EXPECT_EQ(blocks, 2);
}

}  // namespace
}  // namespace framesmith
