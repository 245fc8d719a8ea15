// LoRA files: key layouts mapped onto the packed transformer's names, the merge arithmetic, and
// every kind of bad file refused with a message before anything is applied.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "framesmith/generation_options.h"
#include "framesmith/request_json.h"
#include "golden/golden_transformer.h"
#include "io/safetensors.h"
#include "memory/residency.h"
#include "memory/simulated_device.h"
#include "models/lora.h"
#include "models/transformer_packed.h"
#include "models/weights.h"
#include "support/simulated_forward.h"
#include "test_support.h"

namespace framesmith {
namespace {

using test::error_of;
using test::TempDir;
using Tensors = std::vector<std::pair<std::string, at::Tensor>>;

// The fpstudio-tiny-a transformer: hidden 48, 2 dual and 2 single blocks, MLP 192.
std::string tiny_transformer() {
  return std::string(FRAMESMITH_GOLDEN_DIR) + "/fpstudio-tiny-a/transformer";
}

const io::TensorStore& base_store() {
  static const io::TensorStore store = io::TensorStore::open(tiny_transformer());
  return store;
}

at::Tensor randn(std::vector<std::int64_t> shape, std::uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return at::randn(shape, g, at::TensorOptions().dtype(at::kFloat));
}

std::string write_lora(const TempDir& dir, const std::string& name, const Tensors& tensors) {
  const std::string path = dir.path() + "/" + name + ".safetensors";
  io::save_safetensors(path, tensors);
  return path;
}

// A rank-`r` pair under `stem` with the given suffixes.
void add_pair(Tensors& t, const std::string& stem, std::int64_t in, std::int64_t out,
              std::int64_t r, bool kohya, std::uint64_t seed) {
  t.emplace_back(stem + (kohya ? ".lora_down.weight" : ".lora_A.weight"), randn({r, in}, seed));
  t.emplace_back(stem + (kohya ? ".lora_up.weight" : ".lora_B.weight"), randn({out, r}, seed + 1));
}

TEST(Lora, ThreeLayoutsMapOntoTheSameModules) {
  TempDir dir;
  Tensors d, k, h;
  add_pair(d, "transformer.transformer_blocks.0.attn.to_q", 48, 48, 4, false, 1);
  add_pair(k, "lora_unet_transformer_blocks_0_attn_to_q", 48, 48, 4, true, 1);
  k.emplace_back("lora_unet_transformer_blocks_0_attn_to_q.alpha", at::full({}, 2.0));
  add_pair(h, "diffusion_model.double_blocks.0.img_attn_qkv", 48, 144, 4, false, 1);
  std::vector<LoraFileReport> reports;
  const LoraPatch patch = build_lora_patch({{write_lora(dir, "d", d), 1.0},
                                            {write_lora(dir, "k", k), 0.5},
                                            {write_lora(dir, "h", h), -1.0}},
                                           base_store(), &reports);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[0].layout, LoraLayout::kDiffusers);
  EXPECT_EQ(reports[1].layout, LoraLayout::kKohya);
  EXPECT_EQ(reports[2].layout, LoraLayout::kHunyuan);
  EXPECT_EQ(reports[2].weights, 3);  // fused q/k/v onto three projections
  const auto& q = patch.at("transformer_blocks.0.attn.to_q.weight");
  ASSERT_EQ(q.size(), 3u);                    // stacked in file order
  EXPECT_DOUBLE_EQ(q[0].scale, 1.0);          // no alpha: strength
  EXPECT_DOUBLE_EQ(q[1].scale, 0.5 * 2 / 4);  // alpha / rank
  EXPECT_DOUBLE_EQ(q[2].scale, -1.0);
  // The fused up matrix is split by rows: k gets rows 48..95, A shared.
  const at::Tensor up = randn({144, 4}, 2);
  EXPECT_TRUE(patch.at("transformer_blocks.0.attn.to_k.weight")[0].up.equal(up.narrow(0, 48, 48)));
  EXPECT_TRUE(patch.at("transformer_blocks.0.attn.to_v.weight")[0].down.equal(randn({4, 48}, 1)));
  EXPECT_EQ(patch.count("transformer_blocks.0.attn.add_q_proj.weight"), 0u);
}

TEST(Lora, SingleBlockLinear1SplitsByTheModelsOwnSizes) {
  // Both reference loaders hard-code 3072 to split linear1; here the rows follow the model.
  TempDir dir;
  Tensors h;
  add_pair(h, "diffusion_model.single_blocks.1.linear1", 48, 48 * 3 + 192, 2, false, 5);
  const LoraPatch patch = build_lora_patch({{write_lora(dir, "h", h), 1.0}}, base_store());
  EXPECT_EQ(patch.at("single_transformer_blocks.1.attn.to_q.weight")[0].up.size(0), 48);
  EXPECT_EQ(patch.at("single_transformer_blocks.1.proj_mlp.weight")[0].up.size(0), 192);
  EXPECT_TRUE(patch.at("single_transformer_blocks.1.proj_mlp.weight")[0].up.equal(
      randn({336, 2}, 6).narrow(0, 144, 192)));
}

TEST(Lora, MergedWeightIsBasePlusScaledProduct) {
  TempDir dir;
  Tensors d;
  add_pair(d, "transformer_blocks.1.ff.net.0.proj", 48, 192, 4, false, 9);
  const auto patch = std::make_shared<const LoraPatch>(
      build_lora_patch({{write_lora(dir, "d", d), 0.7}}, base_store()));
  const auto store =
      std::make_shared<const io::TensorStore>(io::TensorStore::open(tiny_transformer()));
  const std::string key = "transformer_blocks.1.ff.net.0.proj.weight";
  const at::Tensor base = store->tensor(key).to(at::kFloat);
  const at::Tensor expected = base + 0.7 * at::matmul(randn({192, 4}, 10), randn({4, 48}, 9));
  // At load: get() returns the merged weight; the mapped base is untouched.
  const Weights at_load = Weights(store, at::kFloat).with_lora(patch);
  EXPECT_TRUE(at::allclose(at_load.get(key, {192, 48}), expected, 1e-6, 1e-6));
  EXPECT_TRUE(store->tensor(key).to(at::kFloat).equal(base));
  // At use: get() is the mapped base, and the placement's conversion adds the factors.
  const Weights at_use =
      Weights(store, at::kFloat, at::kCPU, "", Conversion::kAtUse).with_lora(patch);
  const at::Tensor stored = at_use.get(key, {192, 48});
  EXPECT_TRUE(store->maps(stored));
  const WeightForm form = at_use.form(key);
  ASSERT_TRUE(form.lora);
  EXPECT_FALSE(form.matches(stored));  // never placed as the bare base
  EXPECT_TRUE(at::allclose(to_compute(stored, form), expected, 1e-6, 1e-6));
  // Sub-weights see the same patch under their prefix; unpatched keys carry none.
  EXPECT_TRUE(at_use.sub("transformer_blocks.1").form("ff.net.0.proj.weight").lora);
  EXPECT_FALSE(at_use.form("transformer_blocks.1.ff.net.2.weight").lora);
}

TEST(Lora, ApplyInRowSlicesEqualsOneProductAlsoInBf16) {
  // 2100 x 2048 floats is more than one 2^22-element slice.
  const at::Tensor w = randn({2100, 2048}, 20);
  const std::vector<LoraFactor> f = {{randn({8, 2048}, 21), randn({2100, 8}, 22), -0.3},
                                     {randn({2, 2048}, 23), randn({2100, 2}, 24), 0.0}};
  const at::Tensor expected = w + -0.3 * at::matmul(f[0].up, f[0].down);
  at::Tensor a = w.clone();
  apply_lora(a, f);
  EXPECT_TRUE(at::allclose(a, expected, 1e-5, 1e-5));
  at::Tensor b = w.to(at::kBFloat16);
  apply_lora(b, f);
  EXPECT_EQ(b.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(b.equal(expected.to(at::kBFloat16)) ||
              at::allclose(b.to(at::kFloat), expected, 2e-2, 2e-2));
  at::Tensor zero = w.clone();
  apply_lora(zero, {{f[1]}});  // strength 0: bit for bit the base
  EXPECT_TRUE(zero.equal(w));
}

TEST(Lora, MergedAtLoadEqualsAddedAtPlacementAndStrengthZeroIsTheBase) {
  TempDir dir;
  Tensors d;
  add_pair(d, "transformer.single_transformer_blocks.0.proj_out", 240, 48, 4, false, 30);
  add_pair(d, "transformer.transformer_blocks.1.attn.to_v", 48, 48, 4, false, 32);
  add_pair(d, "transformer.proj_out", 48, 64, 2, false, 34);  // the float32 output projection
  const std::string file = write_lora(dir, "d", d);
  const golden::Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/fpstudio-tiny-a", "lora_forward");
  const TransformerInputs in = golden::transformer_case_inputs(c);
  TransformerLoras on, zero;
  on.files = {{file, 0.8}};
  zero.files = {{file, 0.0}};
  std::vector<LoraFileReport> reports;
  on.reports = &reports;
  const at::Tensor base = load_transformer(tiny_transformer(), at::kFloat, at::kCPU)->forward(in);
  const at::Tensor merged =
      load_transformer(tiny_transformer(), at::kFloat, at::kCPU, Conversion::kAtLoad, on)
          ->forward(in);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].modules, 3);
  EXPECT_EQ(reports[0].weights, 3);
  EXPECT_GT((merged - base).norm().item<double>(), 1e-3 * base.norm().item<double>());
  EXPECT_TRUE(load_transformer(tiny_transformer(), at::kFloat, at::kCPU, Conversion::kAtLoad, zero)
                  ->forward(in)
                  .equal(base));
  // At use on the simulated device: the mapped base stays as it is, each placement adds the
  // factors, whether the module is resident or streamed in per forward.
  auto at_use = load_transformer(tiny_transformer(), at::kFloat, at::kCPU, Conversion::kAtUse, on);
  memory::SimulatedDeviceScope sim(memory::kGiB);
  for (const int resident : {0, at_use->first_block_module() + 2, at_use->num_modules()}) {
    SCOPED_TRACE("resident modules: " + std::to_string(resident));
    const at::Tensor got = test_support::forward_on_simulated_device(*at_use, in, resident);
    EXPECT_TRUE(at::allclose(got, merged, 1e-5, 1e-6)) << (got - merged).abs().max().item<double>();
  }
  EXPECT_EQ(memory::simulated_device::stats().allocated, 0);
  for (int i = 0; i < at_use->num_modules(); ++i)
    for (const auto& [key, t] : at_use->module_tensors(i))
      EXPECT_TRUE(at_use->weights().store().maps(*t)) << key;  // the base, never merged in place
}

// ---- bad files: each refused with a message that says what is wrong ----

TEST(Lora, TruncatedFileIsRefused) {
  TempDir dir;
  Tensors d;
  add_pair(d, "transformer_blocks.0.attn.to_q", 48, 48, 4, false, 1);
  const std::string path = write_lora(dir, "d", d);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size() - 100);
  const std::string e = error_of([&] { build_lora_patch({{path, 1.0}}, base_store()); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_FALSE(e.empty());
  EXPECT_FALSE(summarize_lora_file(path).problem.empty());
}

TEST(Lora, LorasForOtherModelsAreRefusedNotIgnored) {
  TempDir dir;
  Tensors sdxl, wan, flux;
  add_pair(sdxl, "lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320, 4, true, 1);
  add_pair(sdxl, "lora_te1_text_model_encoder_layers_0_mlp_fc1", 768, 3072, 4, true, 3);
  add_pair(wan, "diffusion_model.blocks.0.self_attn.q", 48, 48, 4, false, 1);
  // Flux's kohya names share img_attn_qkv with HunyuanVideo's, not its MLP / modulation names.
  add_pair(flux, "lora_unet_double_blocks_0_img_attn_qkv", 48, 144, 4, true, 1);
  add_pair(flux, "lora_unet_double_blocks_0_img_mlp_0", 48, 192, 4, true, 3);
  add_pair(flux, "lora_unet_double_blocks_0_img_mod_lin", 48, 288, 4, true, 5);
  for (const auto& [name, t] :
       {std::make_pair("sdxl", sdxl), std::make_pair("wan", wan), std::make_pair("flux", flux)}) {
    const std::string e = error_of([&] {
      build_lora_patch({{write_lora(dir, name, t), 1.0}}, base_store());
    });
    EXPECT_NE(e.find("another model"), std::string::npos) << name << ": " << e;
  }
  // One unknown module among many is tolerated (and reported), as a LoRA for a close variant.
  Tensors mostly;
  for (int b = 0; b < 2; ++b)
    for (const char* m :
         {"attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj",
          "attn.add_v_proj", "attn.to_out.0", "attn.to_add_out", "ff.net.2", "ff_context.net.2"})
      add_pair(mostly, "transformer_blocks." + std::to_string(b) + "." + m,
               std::string(m).find("net.2") != std::string::npos ? 192 : 48, 48, 2, false, 7);
  add_pair(mostly, "transformer_blocks.0.attn.to_extra", 48, 48, 2, false, 9);
  std::vector<LoraFileReport> reports;
  build_lora_patch({{write_lora(dir, "mostly", mostly), 1.0}}, base_store(), &reports);
  ASSERT_EQ(reports[0].unmatched.size(), 1u);
  EXPECT_EQ(reports[0].unmatched[0], "transformer_blocks.0.attn.to_extra");
}

TEST(Lora, RankShapeNanAndIncompleteFilesAreRefused) {
  TempDir dir;
  const auto refuse = [&](const std::string& name, const Tensors& t, const std::string& says) {
    const std::string e = error_of([&] {
      build_lora_patch({{write_lora(dir, name, t), 1.0}}, base_store());
    });
    EXPECT_NE(e.find(says), std::string::npos) << name << ": " << e;
  };
  refuse("rank",
         {{"transformer_blocks.0.attn.to_q.lora_A.weight", randn({4, 48}, 1)},
          {"transformer_blocks.0.attn.to_q.lora_B.weight", randn({48, 8}, 2)}},
         "rank mismatch");
  refuse("size",
         {{"transformer_blocks.0.attn.to_q.lora_A.weight", randn({4, 3072}, 1)},
          {"transformer_blocks.0.attn.to_q.lora_B.weight", randn({3072, 4}, 2)}},
         "another model size");
  at::Tensor nan = randn({48, 4}, 2);
  nan[3][1] = std::numeric_limits<float>::quiet_NaN();
  refuse("nan",
         {{"transformer_blocks.0.attn.to_q.lora_A.weight", randn({4, 48}, 1)},
          {"transformer_blocks.0.attn.to_q.lora_B.weight", nan}},
         "NaN");
  refuse("half", {{"transformer_blocks.0.attn.to_q.lora_A.weight", randn({4, 48}, 1)}},
         "no up matrix");
  refuse("lycoris",
         {{"lora_unet_transformer_blocks_0_attn_to_q.hada_w1_a", randn({4, 48}, 1)},
          {"transformer_blocks.0.attn.to_q.lora_A.weight", randn({4, 48}, 1)},
          {"transformer_blocks.0.attn.to_q.lora_B.weight", randn({48, 4}, 2)}},
         "LyCORIS");
  refuse("empty", {{"some.tensor", randn({2, 2}, 1)}}, "no LoRA weights");
  Tensors ok;
  add_pair(ok, "transformer_blocks.0.attn.to_q", 48, 48, 4, false, 1);
  const std::string good = write_lora(dir, "ok", ok);
  for (double s : {1e9, -11.0, std::nan("")}) {
    const std::string e = error_of([&] { build_lora_patch({{good, s}}, base_store()); });
    EXPECT_NE(e.find("strength"), std::string::npos) << s << ": " << e;
  }
  EXPECT_NE(error_of([&] {
              build_lora_patch({{dir.path() + "/gone.safetensors", 1}}, base_store());
            }).find("no such LoRA file"),
            std::string::npos);
}

// ---- the options and the job file ----

TEST(Lora, ArgumentsFolderAndJobFile) {
  EXPECT_EQ(parse_lora_argument("a.safetensors").strength, 1.0);
  EXPECT_EQ(parse_lora_argument("a.safetensors:0.8").path, "a.safetensors");
  EXPECT_EQ(parse_lora_argument("a.safetensors:-0.5").strength, -0.5);
  EXPECT_EQ(parse_lora_argument("dir:x/a.safetensors").path, "dir:x/a.safetensors");

  TempDir dir;
  Tensors ok;
  add_pair(ok, "lora_unet_transformer_blocks_0_attn_to_q", 48, 48, 4, true, 1);
  const std::string file = write_lora(dir, "style", ok);
  EXPECT_EQ(resolve_lora_path("style", dir.path()), file);
  EXPECT_EQ(resolve_lora_path("style.safetensors", dir.path()), file);
  EXPECT_EQ(resolve_lora_path("missing", dir.path()), "missing");
  ASSERT_EQ(list_lora_files(dir.path()), std::vector<std::string>{file});
  const LoraSummary s = summarize_lora_file(file);
  EXPECT_TRUE(s.problem.empty()) << s.problem;
  EXPECT_EQ(s.layout, LoraLayout::kKohya);
  EXPECT_EQ(s.rank, 4);
  EXPECT_EQ(s.modules, 1);

  const CommandOptions o = parse_command_options(
      {"--lora", "style:0.5", "--lora", file + ":-1", "--lora-dir", dir.path()}, 0,
      generation_value_options(), {});
  GenerationRequest req;
  apply_generation_options(o, req);
  ASSERT_EQ(req.loras.size(), 2u);
  EXPECT_EQ(req.loras[0].path, file);
  EXPECT_EQ(req.loras[0].strength, 0.5);
  EXPECT_EQ(req.loras[1].strength, -1.0);
  GenerationRequest back;
  request_from_json(request_to_json(req), back);
  ASSERT_EQ(back.loras.size(), 2u);
  EXPECT_EQ(back.loras[1].path, file);
  EXPECT_EQ(back.loras[1].strength, -1.0);
  // Job files from before LoRAs load with none.
  GenerationRequest old;
  request_from_json(R"({"prompt": "a cat", "steps": 3})", old);
  EXPECT_TRUE(old.loras.empty());
  EXPECT_NE(error_of([&] {
              GenerationRequest r;
              request_from_json(R"({"loras": [{"file": "x", "strength": 1e9}]})", r);
            }).find("strength"),
            std::string::npos);
}

}  // namespace
}  // namespace framesmith
