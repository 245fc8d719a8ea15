// Weights at use: models loaded for a device keep their parameters memory-mapped in the
// checkpoint's dtype (bf16, float8) and convert each module as it is placed; float8 checkpoints
// (safetensors F8_E4M3 / F8_E5M2) decode through a table where LibTorch has no float8 dtype.
#include <gtest/gtest.h>
#include <malloc.h>  // malloc_trim (glibc)

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compat/torch_compat.h"
#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "framesmith/model_set.h"
#include "framesmith/pipeline.h"
#include "io/float8.h"
#include "io/safetensors.h"
#include "memory/host_memory.h"
#include "memory/planner.h"
#include "memory/residency.h"
#include "memory/simulated_device.h"
#include "models/llama.h"
#include "models/transformer_packed.h"
#include "models/weights.h"
#include "support/simulated_forward.h"
#include "support/transformer_inputs.h"
#include "test_support.h"

namespace framesmith {
namespace {

using test::error_of;
using test::TempDir;
using test_support::forward_on_simulated_device;
using Tensors = std::vector<std::pair<std::string, at::Tensor>>;

// ---- float8 decoding, against values computed here from the bits ----

float from_bits(std::uint32_t bits) {
  float f = 0;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// e4m3fn: a normal code's fields placed straight into a float32's (exponent rebased 7 -> 127,
// mantissa shifted to the top), subnormals as mantissa * 2^-9, S.1111.111 NaN.
float e4m3_by_bits(int c) {
  const std::uint32_t sign = static_cast<std::uint32_t>(c >> 7) << 31;
  const int e = (c >> 3) & 15, m = c & 7;
  if (e == 15 && m == 7) return std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return (c & 0x80 ? -1.f : 1.f) * static_cast<float>(m) / 512.f;
  return from_bits(sign | static_cast<std::uint32_t>(e - 7 + 127) << 23 |
                   static_cast<std::uint32_t>(m) << 20);
}

// e5m2: the same with a 5-bit exponent (bias 15), 2 mantissa bits, IEEE infinities and NaNs.
float e5m2_by_bits(int c) {
  const std::uint32_t sign = static_cast<std::uint32_t>(c >> 7) << 31;
  const int e = (c >> 2) & 31, m = c & 3;
  if (e == 31) return m == 0 ? from_bits(sign | 0x7F800000u) : std::nanf("");
  if (e == 0) return (c & 0x80 ? -1.f : 1.f) * static_cast<float>(m) / 65536.f;
  return from_bits(sign | static_cast<std::uint32_t>(e - 15 + 127) << 23 |
                   static_cast<std::uint32_t>(m) << 21);
}

void expect_same_value(float got, float want, int code) {
  if (std::isnan(want))
    EXPECT_TRUE(std::isnan(got)) << "code " << code;
  else
    EXPECT_EQ(got, want) << "code " << code;
}

TEST(Float8, TableMatchesTheBitsOfEveryCode) {
  const auto& e4m3 = io::float8_table(io::Float8Format::kE4M3Fn);
  const auto& e5m2 = io::float8_table(io::Float8Format::kE5M2);
  for (int c = 0; c < 256; ++c) {
    expect_same_value(e4m3[static_cast<std::size_t>(c)], e4m3_by_bits(c), c);
    expect_same_value(e5m2[static_cast<std::size_t>(c)], e5m2_by_bits(c), c);
  }
  // Known values (OCP FP8): the largest e4m3fn, its smallest subnormal, one; e5m2's largest.
  EXPECT_EQ(e4m3[0x7E], 448.0f);
  EXPECT_EQ(e4m3[0xFE], -448.0f);
  EXPECT_EQ(e4m3[0x01], std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3[0x38], 1.0f);
  EXPECT_TRUE(std::isnan(e4m3[0x7F]) && std::isnan(e4m3[0xFF]));
  EXPECT_EQ(e5m2[0x7B], 57344.0f);
  EXPECT_EQ(e5m2[0x3C], 1.0f);
  EXPECT_TRUE(std::isinf(e5m2[0x7C]) && e5m2[0xFC] < 0);
}

TEST(Float8, DecodesIntoEveryComputeDtypeExactly) {
  const at::Tensor codes = at::arange(256, at::kLong).to(at::kByte).view({16, 16});
  for (const auto f : {io::Float8Format::kE4M3Fn, io::Float8Format::kE5M2}) {
    const auto& table = io::float8_table(f);
    const at::Tensor want = at::from_blob(const_cast<float*>(table.data()), {16, 16}).clone();
    for (const at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble}) {
      const at::Tensor got = io::decode_float8(codes, f, t);
      ASSERT_EQ(got.scalar_type(), t);
      const at::Tensor g = got.to(at::kFloat);
      EXPECT_TRUE(at::isnan(g).equal(at::isnan(want))) << io::float8_name(f);
      EXPECT_TRUE(at::nan_to_num(g, 0).equal(at::nan_to_num(want, 0))) << io::float8_name(f);
    }
  }
  // NaN codes: e4m3fn has two (0x7F, 0xFF), e5m2 eight (the all-ones exponent, inf included).
  EXPECT_EQ(io::count_float8_nonfinite(codes, io::Float8Format::kE4M3Fn), 2);
  EXPECT_EQ(io::count_float8_nonfinite(codes, io::Float8Format::kE5M2), 8);
  EXPECT_THROW(io::decode_float8(at::zeros({3}), io::Float8Format::kE4M3Fn, at::kFloat), Error);
}

// ---- float8 files ----

// The nearest e4m3fn code of each value (NaN codes never chosen).
at::Tensor encode_e4m3(const at::Tensor& x) {
  const auto& table = io::float8_table(io::Float8Format::kE4M3Fn);
  const at::Tensor values =
      at::nan_to_num(at::from_blob(const_cast<float*>(table.data()), {1, 256}).clone(), 1e30);
  return (x.reshape({-1, 1}).to(at::kFloat) - values).abs().argmin(1).to(at::kByte).view(x.sizes());
}

// The engine's encoder (make-random-model's float8 files) against the brute-force nearest code.
TEST(Float8, EncodesToTheNearestCode) {
  at::manual_seed(3);
  const at::Tensor x = at::cat({at::randn({4096}) * 0.05, at::randn({4096}) * 30});
  // Compared as values: the brute force picks +0 for tiny negative values, the encoder -0.
  const auto value = [](const at::Tensor& codes) {
    return io::decode_float8(codes, io::Float8Format::kE4M3Fn, at::kFloat);
  };
  EXPECT_TRUE(value(io::encode_float8(x, io::Float8Format::kE4M3Fn)).equal(value(encode_e4m3(x))));
  for (const auto f : {io::Float8Format::kE4M3Fn, io::Float8Format::kE5M2}) {
    const auto& table = io::float8_table(f);
    const at::Tensor values = at::from_blob(const_cast<float*>(table.data()), {256}).clone();
    const at::Tensor finite = values.masked_select(at::isfinite(values));
    // Every finite value is its own code's value again.
    const at::Tensor back = io::decode_float8(io::encode_float8(finite, f), f, at::kFloat);
    EXPECT_TRUE(back.equal(finite)) << io::float8_name(f);
  }
  // Ties go to the even code; past the largest value saturates; NaN stays NaN.
  const auto e4m3 = io::Float8Format::kE4M3Fn;
  const at::Tensor special = at::tensor({1.0625f, 1.1875f, -1.0625f, 1000.0f, -1e30f,
                                         std::numeric_limits<float>::infinity(), std::nanf("")});
  const at::Tensor codes = io::encode_float8(special, e4m3);
  const std::vector<int> want = {0x38, 0x3A, 0xB8, 0x7E, 0xFE, 0x7E, 0x7F};
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(codes[static_cast<std::int64_t>(i)].item<int>(), want[i]) << "value " << i;
  EXPECT_EQ(io::encode_float8(at::tensor({60000.0f}), io::Float8Format::kE5M2).item<int>(), 0x7B);
  EXPECT_THROW(io::encode_float8(at::ones({2}, at::kLong), e4m3), Error);
}

void write_raw_safetensors(const std::string& path, const std::string& header,
                           std::size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out << std::string(data_bytes, '\0');
}

TEST(Float8, FileTensorsAreItsCodesOrNativeFloat8) {
  TempDir d;
  const std::string path = d.path() + "/w.safetensors";
  const at::Tensor codes = at::arange(0, 120, at::kLong).to(at::kByte).view({10, 12});
  io::save_safetensors(path, {{"w", codes}, {"b", at::ones({3})}}, {}, {{"w", "F8_E5M2"}});
  const io::TensorStore store = io::TensorStore::open(path);
  EXPECT_EQ(store.info("w").dtype, "F8_E5M2");
  const at::Tensor w = store.tensor("w");
  EXPECT_TRUE(store.maps(w));  // a view of the file, not a copy
#if FRAMESMITH_HAS_FLOAT8
  ASSERT_EQ(w.scalar_type(), at::kFloat8_e5m2);
  EXPECT_TRUE(w.view(at::kByte).equal(codes));
#else
  ASSERT_EQ(w.scalar_type(), at::kByte);
  EXPECT_TRUE(w.equal(codes));
#endif
  EXPECT_THROW(io::save_safetensors(path, {{"b", at::ones({3})}}, {}, {{"b", "F8_E4M3"}}), Error);
}

TEST(Float8, MalformedHeadersAreRefusedClearly) {
  TempDir d;
  const std::string path = d.path() + "/bad.safetensors";
  // 2 x 3 float8 values are 6 bytes; the offsets claim 12.
  write_raw_safetensors(path, R"({"w":{"dtype":"F8_E4M3","shape":[2,3],"data_offsets":[0,12]}})",
                        12);
  std::string msg = error_of([&] { io::TensorStore::open(path); });
  EXPECT_NE(msg.find("tensor \"w\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("F8_E4M3 x shape needs 6 bytes but data_offsets span 12"), std::string::npos)
      << msg;
  // Past the end of the file.
  write_raw_safetensors(path, R"({"w":{"dtype":"F8_E5M2","shape":[8],"data_offsets":[0,8]}})", 4);
  msg = error_of([&] { io::TensorStore::open(path); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  // A float8 variant safetensors does not name.
  write_raw_safetensors(path, R"({"w":{"dtype":"F8_E4M3FNUZ","shape":[4],"data_offsets":[0,4]}})",
                        4);
  msg = error_of([&] { io::TensorStore::open(path); });
  EXPECT_NE(msg.find("unknown dtype \"F8_E4M3FNUZ\""), std::string::npos) << msg;
}

// ---- transformers written in bf16 and float8 ----

TransformerConfig small_config(std::int64_t heads, std::int64_t head_dim,
                               std::array<std::int64_t, 3> rope, int layers) {
  TransformerConfig c;
  c.num_attention_heads = heads;
  c.attention_head_dim = head_dim;
  c.num_layers = layers;
  c.num_single_layers = layers;
  c.num_refiner_layers = 1;
  c.text_embed_dim = 16;
  c.pooled_projection_dim = 16;
  c.rope_axes_dim = rope;
  c.has_image_proj = true;
  c.image_proj_dim = 16;
  c.has_clean_x_embedder = true;
  return c;
}

void write_transformer(const std::string& dir, const TransformerConfig& cfg, const Tensors& t,
                       const std::map<std::string, std::string>& float8_codes = {}) {
  io::save_safetensors(dir + "/diffusion_pytorch_model.safetensors", t, {}, float8_codes);
  std::ofstream(dir + "/config.json") << cfg.to_json().dump(2);
}

Tensors random_weights(const TransformerConfig& cfg, at::ScalarType dtype) {
  Tensors t = make_random_weights(transformer_parameter_specs(cfg), 7, 0.1);
  for (auto& [name, tensor] : t) tensor = tensor.to(dtype);
  return t;
}

// Every tensor the model holds is a view of its mapped checkpoint, in `dtype` (the file's).
void expect_all_mapped(PackedTransformer& model, at::ScalarType dtype) {
  int n = 0;
  for (int i = 0; i < model.num_modules(); ++i)
    for (const auto& [key, t] : model.module_tensors(i)) {
      EXPECT_TRUE(model.weights().store().maps(*t)) << key;
      EXPECT_EQ(t->scalar_type(), dtype) << key;
      ++n;
    }
  EXPECT_GT(n, 20);
}

TEST(WeightsAtUse, Bf16TransformerStaysMappedAndMatchesConvertAtLoad) {
  TempDir d;
  const TransformerConfig cfg = small_config(2, 16, {4, 6, 6}, 2);
  write_transformer(d.path(), cfg, random_weights(cfg, at::kBFloat16));
  const TransformerInputs in = test_support::random_transformer_inputs(cfg, 4);
  const at::Tensor expected = load_transformer(d.path(), at::kFloat, at::kCPU)->forward(in);

  auto model = load_transformer(d.path(), at::kFloat, at::kCPU, Conversion::kAtUse);
  expect_all_mapped(*model, at::kBFloat16);
  EXPECT_EQ(model->weight_form("proj_out.weight").dtype, at::kFloat);
  // Nothing places the weights: refused, not computed in the wrong dtype.
  EXPECT_NE(error_of([&] { model->forward(in); }).find("loaded at use"), std::string::npos);

  memory::SimulatedDeviceScope sim(memory::kGiB);
  const int first_block = model->first_block_module();
  for (const int resident : {0, first_block + 1, model->num_modules()}) {
    SCOPED_TRACE("resident modules: " + std::to_string(resident));
    memory::simulated_device::reset_counters();
    const at::Tensor got = forward_on_simulated_device(*model, in, resident);
    EXPECT_TRUE(got.equal(expected)) << (got - expected).abs().max().item<double>();
    // The device copies were made in float32: twice the bf16 bytes the host holds.
    EXPECT_GT(memory::simulated_device::stats().peak, 0);
  }
  {
    memory::ComputeDevice device;
    device.simulated = true;
    memory::TransformerResidency residency(*model, device);
    const memory::BlockStreamer& m = residency.modules();
    EXPECT_EQ(m.total_bytes(), 2 * m.host_bytes());
    const std::int64_t before = memory::simulated_device::stats().allocated;
    residency.modules().set_resident_count(m.num_blocks());
    EXPECT_EQ(memory::simulated_device::stats().allocated - before, m.total_bytes());
  }
  EXPECT_EQ(memory::simulated_device::stats().allocated, 0);
  expect_all_mapped(*model, at::kBFloat16);  // back to the mapped tensors
}

// Kijai's layout: weights as float8 e4m3fn, norms and biases kept in bf16.
Tensors as_float8(const Tensors& weights, std::map<std::string, std::string>* codes) {
  Tensors out;
  for (const auto& [name, t] : weights) {
    const bool keep =
        name.find("norm") != std::string::npos || name.find("bias") != std::string::npos;
    if (keep) {
      out.emplace_back(name, t.to(at::kBFloat16));
    } else {
      out.emplace_back(name, encode_e4m3(t));
      (*codes)[name] = "F8_E4M3";
    }
  }
  return out;
}

// The same values, decoded here, as float64: loading converts them to float32 copies, aligned
// as the float8 model's decoded copies are (MKL may round differently for other alignments).
Tensors decoded(const Tensors& stored, const std::map<std::string, std::string>& codes) {
  Tensors out;
  for (const auto& [name, t] : stored)
    out.emplace_back(name, codes.count(name)
                               ? io::decode_float8(t, io::Float8Format::kE4M3Fn, at::kDouble)
                               : t.to(at::kDouble));
  return out;
}

TEST(WeightsAtUse, Float8TransformerEqualsItsPreDecodedWeights) {
  TempDir fp8, reference;
  const TransformerConfig cfg = small_config(2, 16, {4, 6, 6}, 1);
  std::map<std::string, std::string> codes;
  const Tensors stored = as_float8(random_weights(cfg, at::kFloat), &codes);
  write_transformer(fp8.path(), cfg, stored, codes);
  write_transformer(reference.path(), cfg, decoded(stored, codes));
  const TransformerInputs in = test_support::random_transformer_inputs(cfg, 4);
  const at::Tensor expected = load_transformer(reference.path(), at::kFloat, at::kCPU)->forward(in);
  ASSERT_TRUE(at::isfinite(expected).all().item<bool>());

  // Decoded at load (the plain CPU path).
  EXPECT_TRUE(load_transformer(fp8.path(), at::kFloat, at::kCPU)->forward(in).equal(expected));
  // Kept as float8 and decoded per module at placement.
  auto model = load_transformer(fp8.path(), at::kFloat, at::kCPU, Conversion::kAtUse);
  const std::string w = "transformer_blocks.0.attn.to_q.weight";
  const WeightForm form = model->weight_form(w);
  EXPECT_EQ(form.dtype, at::kFloat);
  EXPECT_EQ(form.raw_float8.has_value(), !FRAMESMITH_HAS_FLOAT8);
  for (const auto& [key, t] : model->module_tensors(model->first_block_module())) {
    if (key == w) {
      EXPECT_EQ(t->element_size(), 1u);  // still the file's one-byte codes
    }
  }
  memory::SimulatedDeviceScope sim(memory::kGiB);
  for (const int resident : {0, model->num_modules()}) {
    const at::Tensor got = forward_on_simulated_device(*model, in, resident);
    EXPECT_TRUE(got.equal(expected)) << "resident " << resident;
  }
}

TEST(WeightsAtUse, Float8WithNaNCodesIsRefusedByName) {
  TempDir d;
  const TransformerConfig cfg = small_config(2, 16, {4, 6, 6}, 1);
  std::map<std::string, std::string> codes;
  Tensors stored = as_float8(random_weights(cfg, at::kFloat), &codes);
  for (auto& [name, t] : stored)
    if (name == "single_transformer_blocks.0.proj_mlp.weight") t.view({-1})[5] = 0x7F;
  write_transformer(d.path(), cfg, stored, codes);
  for (const Conversion c : {Conversion::kAtLoad, Conversion::kAtUse}) {
    const std::string msg = error_of([&] { load_transformer(d.path(), at::kFloat, at::kCPU, c); });
    EXPECT_NE(msg.find("single_transformer_blocks.0.proj_mlp.weight\" holds 1 NaN"),
              std::string::npos)
        << msg;
  }
}

// Kijai's single file under its own name, next to FramePack's config.json.
TEST(WeightsAtUse, SingleFileFloat8CheckpointLoadsFromTheTransformerFolder) {
  TempDir d;
  const TransformerConfig cfg = small_config(2, 16, {4, 6, 6}, 1);
  std::map<std::string, std::string> codes;
  Tensors stored = as_float8(random_weights(cfg, at::kFloat), &codes);
  const std::string file = d.path() + "/FramePackI2V_HY_fp8_e4m3fn.safetensors";
  io::save_safetensors(file, stored, {}, codes);
  std::ofstream(d.path() + "/config.json") << cfg.to_json().dump(2);
  auto model = load_transformer(d.path(), at::kFloat, at::kCPU, Conversion::kAtUse);
  EXPECT_EQ(model->weights().store().description(), file);

  // Two candidate files: which one is meant cannot be guessed.
  io::save_safetensors(d.path() + "/other.safetensors", {{"x", at::ones({1})}});
  std::string msg = error_of([&] { load_transformer(d.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find("2 .safetensors files"), std::string::npos) << msg;
  std::remove((d.path() + "/other.safetensors").c_str());

  // A scaled float8 file would compute without its scales: refused by name.
  stored.emplace_back("transformer_blocks.0.attn.to_q.scale_weight", at::ones({1}));
  io::save_safetensors(file, stored, {}, codes);
  msg = error_of([&] { load_transformer(d.path(), at::kFloat, at::kCPU); });
  EXPECT_NE(msg.find("to_q.scale_weight\" is a float8 scale"), std::string::npos) << msg;
}

TEST(WeightsAtUse, FootprintShowsStoredHostBytesAndComputeDeviceBytes) {
  TempDir d;
  const TransformerConfig cfg = small_config(2, 16, {4, 6, 6}, 1);
  std::map<std::string, std::string> codes;
  const Tensors stored = as_float8(random_weights(cfg, at::kFloat), &codes);
  write_transformer(d.path(), cfg, stored, codes);
  std::int64_t elements = 0, host = 0;
  for (const auto& [name, t] : stored) {
    elements += t.numel();
    host += t.numel() * (codes.count(name) ? 1 : 2);
  }
  ModelSet set;
  set.found.push_back({Component::kTransformer, d.path(), "test"});
  for (const bool cuda : {false, true}) {
    const memory::ModelFootprint m = memory::read_model_footprint(set, cuda);
    EXPECT_EQ(m.transformer_host_bytes, host);
    EXPECT_EQ(m.transformer_block_bytes + m.transformer_non_block_bytes, elements * (cuda ? 2 : 4));
  }
  // Float8 next to bf16 compute: about half (the bf16 norms and biases are few).
  const memory::ModelFootprint m = memory::read_model_footprint(set, true);
  EXPECT_LT(m.transformer_host_bytes,
            0.55 * double(m.transformer_block_bytes + m.transformer_non_block_bytes));
}

// A whole job on the simulated card from a model set whose transformer is Kijai-style: one
// float8 file under its own name, next to the config.
TEST(WeightsAtUse, JobRunsFromASingleFileFloat8Transformer) {
  TempDir d;
  const std::string set = d.path() + "/model";
  make_tiny_model(set, 7);
  const std::string folder = set + "/transformer";
  const std::string original = folder + "/diffusion_pytorch_model.safetensors";
  Tensors weights;
  {
    const io::TensorStore store = io::TensorStore::open(original);
    for (const std::string& n : store.names()) weights.emplace_back(n, store.tensor(n).clone());
  }
  std::map<std::string, std::string> codes;
  const Tensors stored = as_float8(weights, &codes);
  io::save_safetensors(folder + "/FramePackI2V_HY_fp8_e4m3fn.safetensors", stored, {}, codes);
  ASSERT_EQ(std::remove(original.c_str()), 0);

  GenerationRequest r;
  r.model_dir = set;
  r.image.width = r.image.height = 64;
  r.image.count = 1;
  r.image.rgb.assign(64 * 64 * 3, 90);
  r.prompt = "a red fox in the snow";
  r.seconds = 0.5;
  r.latent_window = 2;
  r.steps = 2;
  r.resolution = 64;
  r.seed = 5;
  r.device = "cpu";
  r.vram_budget_bytes = 256 * memory::kMiB;
  r.preserved_memory_bytes = 0;
  r.job_dir = d.path() + "/job";
  const GenerationResult result = generate(r, GenerationCallbacks());
  ASSERT_EQ(result.status, StatusCode::kOk) << result.message;
  EXPECT_GT(result.video.count, 0);
}

// ---- host memory: what loading costs in anonymous (non-file) memory ----

std::int64_t rss_anon_bytes() {
  return memory::read_host_memory().rss_anon;  // -1 where the host does not report it
}

TEST(WeightsAtUse, LoadingAtUseCostsNoHostCopy) {
  TempDir d;
  // About 21 M parameters: 42 MB in bf16, 84 MB converted to float32.
  const TransformerConfig cfg = small_config(8, 64, {16, 24, 24}, 2);
  {
    const Tensors t = random_weights(cfg, at::kBFloat16);
    write_transformer(d.path(), cfg, t);
  }
  std::int64_t elements = 0;
  for (const ParamSpec& p : transformer_parameter_specs(cfg)) {
    std::int64_t n = 1;
    for (std::int64_t s : p.shape) n *= s;
    elements += n;
  }
  const std::int64_t converted = elements * 4;
  ASSERT_GT(converted, 60 * memory::kMiB);
  if (rss_anon_bytes() < 0) GTEST_SKIP() << "no RssAnon in /proc/self/status";

  // Freed heap stays resident until trimmed: before, a load reusing what the writing freed would
  // not grow RssAnon; after, the load's freed scratch would count as kept. Trimmed on both sides,
  // the growth is what the loaded model keeps.
  malloc_trim(0);
  const std::int64_t base_use = rss_anon_bytes();
  auto at_use = load_transformer(d.path(), at::kFloat, at::kCPU, Conversion::kAtUse);
  malloc_trim(0);
  const std::int64_t grew_use = rss_anon_bytes() - base_use;
  malloc_trim(0);
  const std::int64_t base_load = rss_anon_bytes();
  auto at_load = load_transformer(d.path(), at::kFloat, at::kCPU);
  malloc_trim(0);
  const std::int64_t grew_load = rss_anon_bytes() - base_load;
  std::printf("converted size %.1f MB; RssAnon growth: at use %.1f MB, at load %.1f MB\n",
              converted / 1e6, grew_use / 1e6, grew_load / 1e6);
  // The measurement sees a host copy when there is one ...
  EXPECT_GT(grew_load, converted / 2);
  // ... and at use there is none (what remains: slices of the NaN check, the allocator's).
  EXPECT_LT(grew_use, converted / 8);
}

// ---- the LLaMA text encoder ----

nlohmann::json llama_json() {
  return {{"model_type", "llama"},    {"hidden_size", 32},        {"intermediate_size", 48},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"num_hidden_layers", 3},
          {"vocab_size", 50},         {"rms_norm_eps", 1e-5},     {"rope_theta", 500000.0}};
}

TEST(WeightsAtUse, LlamaGathersEmbeddingRowsAndMatchesConvertAtLoad) {
  TempDir d;
  const LlamaConfig cfg = LlamaConfig::from_json(llama_json());
  Tensors t = make_random_weights(llama_parameter_specs(cfg), 5, 0.2);
  for (auto& [name, tensor] : t) tensor = tensor.to(at::kBFloat16);
  io::save_safetensors(d.path() + "/model.safetensors", t);
  std::ofstream(d.path() + "/config.json") << llama_json().dump();
  const at::Tensor ids = at::randint(0, 50, {1, 9}, at::kLong);
  const at::Tensor mask = at::ones({1, 9}, at::kLong);
  const at::Tensor expected =
      load_llama(d.path(), at::kFloat, at::kCPU)->hidden_state(ids, mask, -3);

  auto m = load_llama(d.path(), at::kFloat, at::kCPU, Conversion::kAtUse);
  EXPECT_TRUE(m->module_tensors(0).empty());  // the table is gathered by row, never placed
  for (int i = 1; i < m->num_modules(); ++i)
    for (const auto& [key, tensor] : m->module_tensors(i))
      EXPECT_EQ(tensor->scalar_type(), at::kBFloat16) << key;
  // The plain CPU: each layer converted as its forward runs.
  EXPECT_TRUE(m->hidden_state(ids, mask, -3).equal(expected));

  // The simulated device: layers streamed in float32, the embedding's rows gathered.
  memory::SimulatedDeviceScope sim(memory::kGiB);
  memory::ComputeDevice device;
  device.simulated = true;
  memory::BlockStreamer streamer(
      "llama", m->num_modules(), [&](int i) { return m->module_tensors(i); }, device,
      [&](const std::string& key) { return m->weight_form(key); });
  m->before_module = [&](int i) { streamer.before_block(i); };
  m->after_forward = [&] { streamer.release_streamed(); };
  at::Tensor got;
  {
    memory::DeviceWork work(device);
    got = device.to_host(m->hidden_state(ids, mask, -3));
  }
  m->before_module = nullptr;
  m->after_forward = nullptr;
  EXPECT_GT(memory::simulated_device::stats().num_allocations, 0);
  EXPECT_TRUE(got.equal(expected));
  EXPECT_EQ(streamer.block_bytes(0), 0);
  EXPECT_EQ(streamer.total_bytes(), 2 * streamer.host_bytes());
}

}  // namespace
}  // namespace framesmith
