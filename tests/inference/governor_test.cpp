// Memory governor units on the simulated device (no GPU): the streamed VAE decode against the
// whole decode at every rung (and its estimates, recovery and cancel), block streaming, the
// residency policies, the planner and its profile, the step retry of the sampler, telemetry
// tagging and the `estimate` subcommand.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "framesmith/events.h"
#include "framesmith/memory_plan.h"
#include "framesmith/units.h"
#include "golden/golden.h"
#include "io/safetensors.h"
#include "memory/chunked_decode.h"
#include "memory/device_probe.h"
#include "memory/governor.h"
#include "memory/oom_retry.h"
#include "memory/phase.h"
#include "memory/planner.h"
#include "memory/residency.h"
#include "memory/simulated_device.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "models/weights.h"
#include "sampling/sample_hunyuan.h"

namespace framesmith::memory {
namespace {

const std::string kTinyA = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";
const ComputeDevice kSimulated{at::kCPU, true};

double psnr(const at::Tensor& a, const at::Tensor& b) {
  // Pixels in [-1, 1]: peak-to-peak range 2.
  const double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
  if (mse == 0) return 300.0;
  return 10.0 * std::log10(4.0 / mse);
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

std::vector<Event> recoveries(const std::vector<Event>& events) {
  std::vector<Event> out;
  for (const Event& e : events)
    if (e.type == EventType::kOomRecovered) out.push_back(e);
  return out;
}

// The golden tiny-a VAE, its latents and the reference decodes, made once.
struct TinyVae {
  std::shared_ptr<Vae> vae;
  std::unique_ptr<StreamedVaeDecoder> streamed;
  at::Tensor z;      // unscaled latents of the golden vae_decode case (9 frames)
  at::Tensor whole;  // Vae::decode without tiling
  at::Tensor tiled;  // Vae::decode with diffusers' default temporal tiles
};

TinyVae& tiny_vae() {
  static TinyVae* t = [] {
    auto* r = new TinyVae();
    r->vae = load_vae(kTinyA + "/vae", at::kFloat, at::kCPU);
    auto store = std::make_shared<const io::TensorStore>(io::TensorStore::open(kTinyA + "/vae"));
    r->streamed = std::make_unique<StreamedVaeDecoder>(r->vae->config(), Weights(store));
    golden::Case c(kTinyA, "vae_decode");
    r->z = c.in("latents") / r->vae->config().scaling_factor;
    VaeTiling whole;
    whole.temporal = false;
    r->whole = r->vae->decode(r->z, whole);
    r->tiled = r->vae->decode(r->z);
    return r;
  }();
  return *t;
}

VaeTiling no_tiling() {
  VaeTiling t;
  t.temporal = false;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Streamed decode

// Every rung, on the simulated device: equal to the whole decode (and far better than diffusers'
// temporal tiles), with a measured peak the estimate covers and a weight-free peak far below the
// whole decode's.
TEST(StreamedDecode, EqualsTheWholeDecodeAtEveryRungWithinItsEstimate) {
  TinyVae& t = tiny_vae();
  const double diffusers = psnr(t.tiled, t.whole);
  std::printf("diffusers' temporal tiles vs the whole decode: %.2f dB\n", diffusers);
  SimulatedDeviceScope sim(std::int64_t{1} << 34);
  std::int64_t whole_peak = 0;
  {
    OnDeviceScope on_device;
    const at::Tensor out = t.vae->decode(t.z, no_tiling());
    whole_peak = simulated_device::stats().peak;
  }
  t.streamed->load(kSimulated);
  const std::int64_t weights = simulated_device::stats().allocated;
  EXPECT_EQ(weights, t.streamed->weight_bytes());
  EXPECT_EQ(weights, decoder_weight_bytes(t.vae->config(), at::kFloat));
  DecodeShape shape;
  shape.latent_frames = t.z.size(2);
  shape.latent_height = t.z.size(3);
  shape.latent_width = t.z.size(4);
  std::printf("whole decode: peak %s\n", format_size(double(whole_peak)).c_str());
  for (const DecodeRung& rung : default_decode_ladder()) {
    simulated_device::reset_peak();
    DecodeContext ctx;
    ctx.device = kSimulated;
    ctx.rungs = {rung};
    const auto t0 = std::chrono::steady_clock::now();
    const at::Tensor out = t.streamed->decode(t.z, no_tiling(), ctx);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::int64_t peak = simulated_device::stats().peak - weights;
    const std::int64_t estimate = estimate_decode_tile_peak(t.vae->config(), shape, rung);
    ASSERT_EQ(out.sizes(), t.whole.sizes());
    const double p = psnr(out, t.whole);
    std::printf("%-22s PSNR %6.1f dB  max-abs %.1e  peak %9s  est. %9s  %.2f s\n",
                rung.name().c_str(), p, max_abs(out, t.whole), format_size(double(peak)).c_str(),
                format_size(double(estimate)).c_str(), s);
    EXPECT_GT(p, diffusers) << rung.name();
    EXPECT_GT(p, 100.0) << rung.name();
    EXPECT_LT(max_abs(out, t.whole), 1e-4) << rung.name();
    EXPECT_LE(peak, estimate) << rung.name();
    EXPECT_LE(estimate, peak + peak / 2) << rung.name();
    EXPECT_LT(peak, whole_peak / 2) << rung.name();
  }
  t.streamed->unload();
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

TEST(StreamedDecode, TemporalTilesEqualDiffusersTiling) {
  TinyVae& t = tiny_vae();
  for (const DecodeRung& rung : {DecodeRung{16, 1}, DecodeRung{4, 2}}) {
    DecodeContext ctx;
    ctx.rungs = {rung};
    const at::Tensor out = t.streamed->decode(t.z, VaeTiling{}, ctx);
    ASSERT_EQ(out.sizes(), t.tiled.sizes());
    EXPECT_LT(max_abs(out, t.tiled), 1e-4) << rung.name();
  }
  DecodeContext ctx;
  VaeTiling spatial;
  spatial.spatial = true;
  EXPECT_THROW(t.streamed->decode(t.z, spatial, ctx), Error);
}

// The budget fits chunk 4 but not chunk 16: a chunk runs out of memory, the ladder moves to
// chunk 4 and redoes that chunk, and the result is still the whole decode.
TEST(StreamedDecode, RecoversInsideTheDecodeAtTheSameChunk) {
  TinyVae& t = tiny_vae();
  const at::Tensor z = t.z.narrow(2, 0, 5);
  const at::Tensor expected = t.vae->decode(z, no_tiling());
  DecodeShape shape;
  shape.latent_frames = 5;
  shape.latent_height = z.size(3);
  shape.latent_width = z.size(4);
  SimulatedDeviceScope sim(std::int64_t{1} << 34);
  t.streamed->load(kSimulated);
  const std::int64_t weights = simulated_device::stats().allocated;
  simulated_device::set_budget(weights + estimate_decode_tile_peak(t.vae->config(), shape, {4, 1}) +
                               1);
  std::vector<Event> events;
  auto probe = make_simulated_probe();
  DecodeContext ctx;
  ctx.device = kSimulated;
  ctx.rungs = {{16, 1}, {4, 1}, {1, 4}};
  ctx.on_event = [&](const Event& e) { events.push_back(e); };
  ctx.hooks.probe = probe.get();
  const at::Tensor out = t.streamed->decode(z, no_tiling(), ctx);
  EXPECT_LT(max_abs(out, expected), 1e-4);
  EXPECT_EQ(ctx.rung, 1u);  // sticky: later chunks stay at chunk 4
  const auto r = recoveries(events);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].text("action"),
            "chunk 16\xE2\x86\x92"
            "4");
  EXPECT_EQ(r[0].text("outcome"), "retry");
  EXPECT_EQ(r[0].phase.rfind("decode chunk ", 0), 0u);
  EXPECT_GT(r[0].number("requested"), 0);
  EXPECT_EQ(r[1].text("outcome"), "ok");
  // What the budget refused, not "peak <= budget" (the simulated allocator refuses anything past
  // the budget, so that could never fail): exactly one refusal, the one the recovery reports, a
  // real one of the budget (not an injected fault), in the chunk that was then redone.
  EXPECT_EQ(simulated_device::stats().num_ooms, 1);
  const std::string refusal = r[0].text("message");
  EXPECT_NE(refusal.find("Simulated device out of memory"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("injected"), std::string::npos) << refusal;
  EXPECT_EQ(requested_bytes_from_message(refusal), std::int64_t(r[0].number("requested")))
      << refusal;
  EXPECT_NE(refusal.find(r[0].phase), std::string::npos) << refusal;
  t.streamed->unload();
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

// Failures injected deep inside stages that write in place (resnets, attention): the retried
// chunk starts from the saved activation, so the result does not change.
TEST(StreamedDecode, RetriedChunksOfInPlaceStagesGiveTheSameResult) {
  TinyVae& t = tiny_vae();
  const at::Tensor z = t.z.narrow(2, 0, 3);
  const at::Tensor expected = t.vae->decode(z, no_tiling());
  SimulatedDeviceScope sim(std::int64_t{1} << 34);
  t.streamed->load(kSimulated);
  // Two bands per chunk at first: a failure in the second band comes after the first band was
  // written in place (restored from the slab's backup). One band at first: nothing was written
  // (a one-band slab is written last), so no backup is taken.
  for (const std::vector<DecodeRung>& rungs :
       {std::vector<DecodeRung>{{4, 2}, {1, 4}, {1, 8}}, std::vector<DecodeRung>{{4, 1}, {1, 1}}}) {
    std::int64_t total = 0;  // device allocations of one decode at the first rung
    {
      const std::int64_t before = simulated_device::stats().num_allocations;
      DecodeContext ctx;
      ctx.device = kSimulated;
      ctx.rungs = {rungs[0]};
      t.streamed->decode(z, no_tiling(), ctx);
      total = simulated_device::stats().num_allocations - before;
    }
    for (double at : {0.1, 0.35, 0.6, 0.85}) {
      // Some allocations have a fallback inside LibTorch (2.x's oneDNN retries a failed
      // scratchpad another way): a failure there never reaches the decoder and the result is
      // simply right. The next allocations are tried until one surfaces and is retried.
      int retries = 0, absorbed = 0;
      std::int64_t n = static_cast<std::int64_t>(at * double(total));
      for (const std::int64_t last = n + 16; retries == 0 && n <= last; ++n) {
        simulated_device::fail_nth_allocation(n);
        DecodeContext ctx;
        ctx.device = kSimulated;
        ctx.rungs = rungs;
        ctx.on_event = [&](const Event& e) { retries += e.text("outcome") == "retry"; };
        const at::Tensor out = t.streamed->decode(z, no_tiling(), ctx);
        simulated_device::clear_faults();
        EXPECT_LT(max_abs(out, expected), 1e-4)
            << rungs[0].name() << ": failure at allocation " << n << " of " << total;
        absorbed += retries == 0;
      }
      EXPECT_EQ(retries, 1) << rungs[0].name() << ": failure near allocation " << n << " of "
                            << total;
      EXPECT_LE(absorbed, 4) << rungs[0].name() << ": most failures never reached the decoder";
    }
  }
  t.streamed->unload();
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

TEST(StreamedDecode, StopsBetweenChunksWhenCancelled) {
  TinyVae& t = tiny_vae();
  SimulatedDeviceScope sim(std::int64_t{1} << 34);
  t.streamed->load(kSimulated);
  const std::int64_t weights = simulated_device::stats().allocated;
  std::atomic<bool> cancel{true};
  DecodeContext ctx;
  ctx.device = kSimulated;
  ctx.cancel = &cancel;
  EXPECT_THROW(t.streamed->decode(t.z.narrow(2, 0, 2), no_tiling(), ctx), Cancelled);
  EXPECT_EQ(simulated_device::stats().allocated, weights);
  t.streamed->unload();
}

// ---------------------------------------------------------------------------------------------
// Block streaming

// A model of 6 blocks of two 64 KiB tensors each.
struct FakeModel {
  std::vector<std::vector<at::Tensor>> blocks;
  FakeModel() {
    for (int i = 0; i < 6; ++i)
      blocks.push_back({at::full({16384}, float(i)), at::full({16384}, float(-i))});
  }
  BlockStreamer::TensorRefs refs(int i) { return {{"w", &blocks[i][0]}, {"b", &blocks[i][1]}}; }
};

TEST(BlockStreamer, KeepsResidentBlocksAndStreamsTheRestWithPrefetch) {
  constexpr std::int64_t kBlock = 2 * 16384 * 4;
  FakeModel m;  // host weights, made before the device exists (it would count them)
  SimulatedDeviceScope sim(64 * kBlock);
  auto probe = make_simulated_probe();
  {
    BlockStreamer s(
        "fake", 6, [&](int i) { return m.refs(i); }, kSimulated);
    EXPECT_EQ(s.total_bytes(), 6 * kBlock);
    s.set_resident_count(2);
    EXPECT_EQ(simulated_device::stats().allocated, 2 * kBlock);
    EXPECT_EQ(s.resident_count(), 2);
    simulated_device::reset_peak();
    for (int i = 0; i < 6; ++i) {
      s.before_block(i);
      // The block that runs is on the device (a copy, equal to the host tensor).
      EXPECT_EQ(m.blocks[i][0][0].item<float>(), float(i));
      // Resident blocks, the running streamed one and the prefetched next one at most.
      EXPECT_LE(simulated_device::stats().allocated, 4 * kBlock) << i;
    }
    // At most the running block and the prefetched one were streamed copies at once.
    EXPECT_EQ(s.streamed_peak_bytes(), 2 * kBlock);
    s.release_streamed();
    EXPECT_EQ(simulated_device::stats().allocated, 2 * kBlock);
    EXPECT_EQ(s.streamed_blocks_total(), 4);
    // Offload until 63 blocks' worth are free: one resident block goes.
    s.offload_until_free(63 * kBlock, *probe);
    EXPECT_EQ(s.resident_count(), 1);
    // Load while 60 blocks' worth stay free: 4 blocks resident.
    EXPECT_EQ(s.load_while_free_above(60 * kBlock, *probe), 4);
    EXPECT_EQ(s.load_while_free_above(0, *probe, 3), 3);
    std::atomic<bool> cancel{true};
    s.cancel = &cancel;
    EXPECT_THROW(s.before_block(0), Cancelled);
  }
  EXPECT_EQ(simulated_device::stats().allocated, 0);
  EXPECT_EQ(m.blocks[5][1][0].item<float>(), -5.0f);
}

// ---------------------------------------------------------------------------------------------
// Residency policies

TEST(ResidencyPolicy, FramePacksThresholdAndPreservedMemory) {
  EXPECT_EQ(choose_residency_policy(61 * kGiB)->name(), "high-vram");
  EXPECT_EQ(choose_residency_policy(59 * kGiB)->name(), "low-vram");
  EXPECT_FALSE(make_high_vram_policy()->stream_text_encoder());
  EXPECT_TRUE(make_low_vram_policy()->stream_text_encoder());
  EXPECT_TRUE(make_low_vram_policy()->unload_after_use());

  auto transformer = load_transformer(kTinyA + "/transformer", at::kFloat, at::kCPU);
  const std::int64_t budget = 4 * kMiB;
  SimulatedDeviceScope sim(budget);
  auto probe = make_simulated_probe();
  {
    TransformerResidency t(*transformer, kSimulated);
    BlockStreamer& m = t.modules();
    // Nothing is on the device until a policy places it; modules are the checkpoint's.
    EXPECT_EQ(simulated_device::stats().allocated, 0);
    EXPECT_EQ(m.num_blocks(), transformer->num_modules());
    const int first = transformer->first_block_module();
    std::int64_t leading = 0;
    for (int i = 0; i < first; ++i) leading += m.block_bytes(i);
    const std::int64_t per_block = m.block_bytes(first);
    // FramePack's preserved memory: modules in order until the next would leave less free.
    ResidencyLimits limits;
    limits.preserved_memory = budget - leading - 2 * per_block - 1000;
    limits.decode_free_target = budget - leading - per_block / 2;
    auto low = make_low_vram_policy(limits);
    EXPECT_NE(low->prepare_sampling(t, *probe, 1 << 30), "");
    EXPECT_EQ(m.resident_count(), first + 2);
    EXPECT_EQ(t.resident_blocks(), 2);
    EXPECT_EQ(simulated_device::stats().allocated, leading + 2 * per_block);
    EXPECT_GE(free_bytes(probe->snapshot()), limits.preserved_memory);
    EXPECT_EQ(t.modules_for_blocks(2), first + 2);
    // Before decoding: the last resident modules go until the target is free.
    EXPECT_NE(low->prepare_decode(t, *probe), "");
    EXPECT_EQ(m.resident_count(), first);
    auto high = make_high_vram_policy(limits);
    high->prepare_sampling(t, *probe, 1 << 30);
    EXPECT_EQ(m.resident_count(), m.num_blocks());
    EXPECT_EQ(simulated_device::stats().allocated, m.total_bytes());
    EXPECT_TRUE(high->offload_more(t));
    EXPECT_EQ(m.resident_count(), m.num_blocks() / 2);
    EXPECT_EQ(high->prepare_decode(t, *probe), "");
    // The compute device follows the residency; the weights stay the host's.
    EXPECT_EQ(transformer->compute_device(), at::Device(at::kCPU));
  }
  EXPECT_EQ(simulated_device::stats().allocated, 0);
  EXPECT_FALSE(transformer->before_module);
}

// ---------------------------------------------------------------------------------------------
// Planner and profile

// FramePack's real model (HunyuanVideo transformer, its VAE, LLaMA 8B, CLIP-L, SigLIP), sized
// from the configs alone, with CUDA dtypes.
ModelFootprint framepack_footprint() {
  ModelFootprint m;
  m.has_transformer = true;
  m.transformer.has_image_proj = m.transformer.has_clean_x_embedder = true;
  m.transformer_blocks = 60;
  m.transformer_block_sizes.assign(60, 0);
  for (const ParamSpec& p : transformer_parameter_specs(m.transformer)) {
    std::int64_t n = 2;
    for (std::int64_t d : p.shape) n *= d;
    const bool dual = p.name.rfind("transformer_blocks.", 0) == 0;
    const bool single = p.name.rfind("single_transformer_blocks.", 0) == 0;
    (dual || single ? m.transformer_block_bytes : m.transformer_non_block_bytes) += n;
    if (dual || single) {
      const std::size_t prefix = dual ? 19 : 26;  // "transformer_blocks." / "single_..."
      const int i = std::stoi(p.name.substr(prefix)) + (single ? 20 : 0);
      m.transformer_block_sizes[static_cast<std::size_t>(i)] += n;
    }
  }
  m.has_vae = true;
  m.vae_decoder_bytes = decoder_weight_bytes(m.vae, at::kHalf);
  m.vae_encoder_bytes = 2 * 34'000'000;
  m.text_encoder_bytes = std::int64_t{15'000'000'000};
  // Streamed, the LLaMA holds its largest two consecutive modules: two layers (attention with 8
  // KV heads + the 14336-wide MLP: 218.1 M parameters each); the embedding stays on the host.
  m.text_encoder_stream_bytes = std::int64_t{2} * 218'112'000 * 2;
  m.text_encoder_2_bytes = 246'000'000;
  m.image_encoder_bytes = 856'000'000;
  m.fingerprint = "framepack";
  return m;
}

JobShape framepack_job() {
  JobShape j;
  j.height = j.width = 640;
  j.latent_window = 9;
  j.sections = 4;
  return j;
}

TEST(Planner, PlansFramePackFor6And24And80GiB) {
  const ModelFootprint m = framepack_footprint();
  EXPECT_GT(m.transformer_block_bytes, 12 * kGiB);
  // 19 is the planner's own formula (JobShape::max_decode_latents: min(sections x window + 1,
  // 2 x window + 1) = 2 x 9 + 1), i.e. FramePack's decode of the latest two windows plus the start
  // latent; a pin of that formula, not a measurement.
  EXPECT_EQ(framepack_job().max_decode_latents(), 19);
  {
    DecodeShape shape;
    shape.latent_frames = 19;
    shape.latent_height = shape.latent_width = 80;
    shape.element_bytes = 2;
    shape.cpu_convolution = false;
    std::printf("FramePack decode of 19 latents at 640 x 640 on CUDA, activations per rung:\n");
    for (const DecodeRung& r : default_decode_ladder())
      std::printf("  %-20s whole %9s   FramePack's tiles %9s\n", r.name().c_str(),
                  format_size(double(estimate_decode_peak(m.vae, shape, r, false))).c_str(),
                  format_size(double(estimate_decode_peak(m.vae, shape, r, true))).c_str());
  }
  MemoryPlan previous;
  for (std::int64_t gib : {6, 24, 80}) {
    const MemoryPlan p = make_memory_plan(m, framepack_job(), gib * kGiB, ResidencyLimits{},
                                          PeakProfile(), "cuda:0", AttentionKernel::kFusedCuda);
    std::printf("--- %lld GiB\n%s", (long long)gib, p.text().c_str());
    EXPECT_EQ(p.residency, gib == 80 ? "high-vram" : "low-vram");
    ASSERT_EQ(p.phases.size(), 5u);
    for (const char* phase : {"vae encode", "sampling", "decode"}) {
      ASSERT_NE(p.find(phase), nullptr);
      EXPECT_TRUE(p.find(phase)->fits) << gib << " GiB " << phase;
    }
    EXPECT_NE(p.find("decode")->line().find("latent frame"), std::string::npos);
    if (gib == 6) {
      // LLaMA 8B (15 GB) streamed per layer fits where it could never be loaded whole.
      EXPECT_TRUE(p.find("text")->fits);
      EXPECT_EQ(p.find("text")->setting, "LLaMA streamed per layer, CLIP whole");
      EXPECT_EQ(p.resident_blocks, 0);
    }
    if (gib == 80) {
      EXPECT_EQ(p.resident_blocks, 60);
    }
    if (!previous.phases.empty()) {
      EXPECT_GE(p.resident_blocks, previous.resident_blocks);
      EXPECT_LE(p.decode_rung, previous.decode_rung);
    }
    // The decode ladder only ever goes down in memory.
    for (std::size_t i = 1; i < p.decode_rungs.size(); ++i)
      EXPECT_TRUE(p.decode_rungs[i].latent_frames < p.decode_rungs[i - 1].latent_frames ||
                  p.decode_rungs[i].row_bands > p.decode_rungs[i - 1].row_bands);
    previous = p;
  }
}

TEST(Planner, MeasuredPeaksCorrectLaterPlansAndAreRemembered) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("fs_profile_" + std::to_string(::getpid())))
          .string();
  const ModelFootprint m = framepack_footprint();
  PeakProfile profile;
  EXPECT_EQ(profile.correction("x"), 1.0);
  const MemoryPlan before = make_memory_plan(m, framepack_job(), 6 * kGiB, ResidencyLimits{},
                                             profile, "cuda:0", AttentionKernel::kFusedCuda);
  // The decode measured at half its estimate, twice: later plans pick larger chunks.
  const std::string key = profile_key("cuda:0", "decode", m);
  profile.record(key, 1000, 500);
  profile.record(key, 1000, 500);
  EXPECT_NEAR(profile.correction(key), 0.5, 1e-9);
  profile.save(path);
  const PeakProfile loaded = PeakProfile::load(path);
  EXPECT_NEAR(loaded.correction(key), 0.5, 1e-9);
  EXPECT_EQ(loaded.entries().at(key).samples, 2);
  const MemoryPlan after = make_memory_plan(m, framepack_job(), 6 * kGiB, ResidencyLimits{}, loaded,
                                            "cuda:0", AttentionKernel::kFusedCuda);
  // A larger chunk (a lower rung), or the same one at a lower estimate.
  EXPECT_LE(after.decode_rung, before.decode_rung);
  EXPECT_TRUE(after.decode_rung < before.decode_rung ||
              after.find("decode")->estimate < before.find("decode")->estimate);
  // A larger measurement wins at once; a broken file is an empty profile.
  profile.record(key, 1000, 3000);
  EXPECT_NEAR(profile.correction(key), 3.0, 1e-9);
  std::ofstream(path) << "{not json";
  EXPECT_TRUE(PeakProfile::load(path).empty());
  std::filesystem::remove(path);
}

TEST(Planner, EstimateSubcommandPrintsThePlan) {
  std::ostringstream out, err;
  const int rc =
      run_engine_command({"estimate", "--model", kTinyA, "--resolution", "640", "--seconds", "5",
                          "--window", "9", "--vram-budget", "6GiB", "--preserve", "1GiB"},
                         out, err);
  EXPECT_EQ(rc, 0) << err.str();
  std::printf("%s", out.str().c_str());
  // Expected values from the planner's rules, not measured: 6 GiB is far more than the tiny model
  // needs, so the decode gets the top rung of default_decode_ladder() (chunk 16) and every one of
  // tiny-a's 4 transformer blocks is resident.
  EXPECT_NE(out.str().find("decode: chunk 16 latent frames, est. "), std::string::npos);
  EXPECT_NE(out.str().find("of 6.0 GiB budget"), std::string::npos);
  EXPECT_NE(out.str().find("sampling: 4 of 4 blocks resident"), std::string::npos);
  std::ostringstream out2, err2;
  EXPECT_EQ(run_engine_command({"estimate"}, out2, err2), 2);
  EXPECT_NE(err2.str().find("usage: estimate"), std::string::npos);
}

// The structured plan (framesmith/memory_plan.h, what the studio shows) is the printed one.
TEST(Planner, StructuredPlanIsThePrintedPlan) {
  GenerationRequest r;
  r.model_dir = kTinyA;
  r.device = "cpu";
  r.resolution = 640;
  r.seconds = 5;
  r.latent_window = 9;
  r.vram_budget_bytes = 6 * kGiB;
  r.preserved_memory_bytes = kGiB;
  const MemoryPlanReport p = plan_job_memory(r, 800, 600);
  EXPECT_EQ(p.residency, "low-vram");
  EXPECT_EQ(p.budget_bytes, 6 * kGiB);
  EXPECT_GT(p.weight_bytes, 0);
  EXPECT_GT(p.sections, 1);
  EXPECT_GT(p.width, p.height);  // the 4:3 image's bucket
  ASSERT_EQ(p.phases.size(), 5u);
  std::int64_t largest = 0;
  for (const PhaseEstimate& e : p.phases) {
    EXPECT_NE(p.text.find(e.line + "\n"), std::string::npos) << e.line;
    EXPECT_EQ(e.line.rfind(e.phase + ": " + e.setting, 0), 0u) << e.line;
    EXPECT_GT(e.peak_bytes, 0) << e.phase;
    EXPECT_TRUE(e.fits);
    EXPECT_FALSE(e.on_cpu);
    largest = std::max(largest, e.peak_bytes);
  }
  ASSERT_NE(p.largest(), nullptr);
  EXPECT_EQ(p.largest()->peak_bytes, largest);
  // A budget nothing fits in: the encoders are planned on the CPU and say so.
  r.vram_budget_bytes = 64 * 1024;
  const MemoryPlanReport tight = plan_job_memory(r);
  int on_cpu = 0;
  for (const PhaseEstimate& e : tight.phases) {
    EXPECT_FALSE(e.fits) << e.phase;
    on_cpu += e.on_cpu;
  }
  EXPECT_EQ(on_cpu, 3);  // text, image, VAE encode
  EXPECT_NE(tight.largest(), nullptr);
  EXPECT_FALSE(tight.largest()->on_cpu);
  r.device = "tpu";
  EXPECT_THROW(plan_job_memory(r), Error);
}

// ---------------------------------------------------------------------------------------------
// Governor: the sampler's step retry, a cancel inside a streamed forward, telemetry

struct Sampling {
  std::shared_ptr<PackedTransformer> transformer =
      load_transformer(kTinyA + "/transformer", at::kFloat, at::kCPU);
  sampling::SampleHunyuanParams params;
  sampling::HunyuanConditioning cond;
  sampling::SectionContext ctx;
  Sampling() {
    const TransformerConfig& c = transformer->config();
    at::manual_seed(11);
    cond.positive.embeds = at::randn({1, 7, c.text_embed_dim});
    cond.positive.mask = at::ones({1, 7}, at::kLong);
    cond.positive.poolers = at::randn({1, c.pooled_projection_dim});
    cond.image_embeddings = at::randn({1, 5, c.image_proj_dim});
    params.width = params.height = 64;
    params.frames = 5;
    params.num_inference_steps = 3;
    params.dtype = at::kFloat;
  }
  at::Tensor run(const std::function<sampling::FlowModel(sampling::FlowModel)>& wrap) {
    at::Generator g = at::detail::createCPUGenerator(3);
    sampling::SampleHooks hooks;
    hooks.wrap_model = wrap;
    return sampling::sample_hunyuan(*transformer, params, cond, ctx, g, hooks);
  }
};

GovernorOptions simulated_options(std::int64_t budget) {
  GovernorOptions o;
  o.device = kSimulated;
  o.budget = budget;
  o.limits.preserved_memory = 0;
  return o;
}

TEST(Governor, ARetriedStepGivesExactlyTheUninterruptedResult) {
  Sampling s;
  const at::Tensor expected = s.run(nullptr);
  SimulatedDeviceScope sim(64 * kMiB);
  std::vector<Event> events;
  at::Tensor out;
  {
    Governor gov(simulated_options(64 * kMiB), [&](const Event& e) { events.push_back(e); });
    gov.attach_transformer(*s.transformer);
    simulated_device::fail_next_allocation_larger_than(0, "section 1 step 2");
    out = s.run(gov.model_wrapper());
    EXPECT_EQ(gov.recoveries(), 1);
  }
  EXPECT_TRUE(at::equal(out, expected));
  const auto r = recoveries(events);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].phase, "section 1 step 2");
  EXPECT_EQ(r[0].number("step"), 2);
  EXPECT_EQ(r[0].text("outcome"), "retry");
  // Every module of the tiny model was resident (5 embedders, 4 blocks, 2 output): half go.
  EXPECT_EQ(r[0].text("action"),
            "resident 11\xE2\x86\x92"
            "5, attention 1024");
  EXPECT_EQ(r[1].text("outcome"), "ok");
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

// High-VRAM places every module; when the device cannot hold them all (the probe said it could:
// here the threshold is set below the budget), the placement runs out of memory, the governor falls
// to low-VRAM for the rest of the job (modules while they fit, the rest streamed), and the result
// is that of the undisturbed run.
TEST(Governor, HighVramPlacementThatRunsOutOfMemoryFallsToLowVram) {
  Sampling s;
  const at::Tensor expected = s.run(nullptr);
  std::int64_t weights = 0;
  for (int i = 0; i < s.transformer->num_modules(); ++i)
    for (auto& [name, t] : s.transformer->module_tensors(i))
      weights += static_cast<std::int64_t>(t->numel() * t->element_size());
  const std::int64_t budget = weights * 9 / 10;  // most modules fit, not all
  SimulatedDeviceScope sim(budget);
  std::vector<Event> events;
  at::Tensor out;
  {
    GovernorOptions o = simulated_options(budget);
    o.limits.high_vram_threshold = 0;  // "everything fits"
    o.telemetry = false;
    Governor gov(o, [&](const Event& e) { events.push_back(e); });
    ASSERT_EQ(gov.policy().name(), "high-vram");
    gov.attach_transformer(*s.transformer);
    out = s.run(gov.model_wrapper());
    EXPECT_EQ(gov.policy().name(), "low-vram");
    EXPECT_LE(simulated_device::stats().peak, budget);
  }
  EXPECT_TRUE(at::equal(out, expected));
  const auto r = recoveries(events);
  ASSERT_GE(r.size(), 2u);
  EXPECT_EQ(r[0].phase, "sampling placement");
  EXPECT_EQ(r[0].text("memory"), "device");
  EXPECT_EQ(r[0].text("outcome"), "retry");
  EXPECT_EQ(r[0].text("action"), "placement high-vram\xE2\x86\x92low-vram");
  EXPECT_EQ(r[1].phase, "sampling placement");
  EXPECT_EQ(r[1].text("outcome"), "ok");
  bool switched = false, streamed = false;
  for (const Event& e : events) {
    if (e.type != EventType::kResidency) continue;
    const std::string a = e.text("action");
    switched |=
        a.find("high-vram placement ran out of memory; low-vram from here on") != std::string::npos;
    streamed |= a.find("streamed per module") != std::string::npos;
  }
  EXPECT_TRUE(switched);
  EXPECT_TRUE(streamed);
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

TEST(Governor, CancelInsideAStreamedForwardLeavesOnlyWhatWasResident) {
  Sampling s;
  SimulatedDeviceScope sim(64 * kMiB);
  std::atomic<bool> cancel{false};
  {
    GovernorOptions o = simulated_options(64 * kMiB);
    o.limits.preserved_memory = 64 * kMiB;  // nothing resident: every block streams
    Governor gov(o, nullptr, &cancel);
    gov.attach_transformer(*s.transformer);
    const std::int64_t before = simulated_device::stats().allocated;
    EXPECT_EQ(before, 0);
    auto streamer_hook = s.transformer->before_module;
    const int cancel_at = s.transformer->first_block_module() + 2;
    int reached = -1;
    s.transformer->before_module = [&](int i) {
      reached = i;
      if (i == cancel_at) cancel = true;  // blocks 0 and 1 ran streamed, 2 is coming in
      streamer_hook(i);
    };
    EXPECT_THROW(s.run(gov.model_wrapper()), Cancelled);
    EXPECT_EQ(reached, cancel_at);
    EXPECT_EQ(simulated_device::stats().allocated, before);
    s.transformer->before_module = streamer_hook;
  }
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

// An out-of-memory after TeaCache decided (at the output projection) is retried from TeaCache's
// state before the step: with reuse on (threshold out of reach, 3 steps: compute, reuse,
// compute) the governed run equals the undisturbed one. Without the restore the retried step
// would see its counter at the last step and compute instead of reusing.
TEST(Governor, ARetriedStepRestoresTeaCacheFirst) {
  Sampling s;
  s.transformer->initialize_teacache(true, 3, 1e9);
  const at::Tensor expected = s.run(nullptr);
  s.transformer->initialize_teacache(true, 3, 1e9);
  SimulatedDeviceScope sim(64 * kMiB);
  at::Tensor out;
  {
    Governor gov(simulated_options(64 * kMiB), nullptr);
    gov.attach_transformer(*s.transformer);
    auto streamer_hook = s.transformer->before_module;
    const int proj_out = s.transformer->num_modules() - 1;
    int outputs = 0;
    s.transformer->before_module = [&](int i) {
      streamer_hook(i);
      if (i == proj_out && ++outputs == 2) throw std::bad_alloc();  // step 2's first try
    };
    out = s.run(gov.model_wrapper());
    EXPECT_EQ(gov.recoveries(), 1);
    s.transformer->before_module = streamer_hook;
  }
  s.transformer->initialize_teacache(false);
  EXPECT_TRUE(at::equal(out, expected));
  EXPECT_EQ(simulated_device::stats().allocated, 0);
}

// A job's first step per section measures the sampling peak and the profile keeps it (keyed by
// device kind, phase and model), so that the next plan uses the measured ratio.
TEST(Governor, SamplingPeaksAreRememberedInTheProfile) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "framesmith-sampling-profile.json").string();
  std::filesystem::remove(path);
  Sampling s;
  SimulatedDeviceScope sim(64 * kMiB);
  ModelFootprint model;
  model.has_transformer = true;
  model.transformer = s.transformer->config();
  model.transformer_blocks = s.transformer->num_blocks();
  model.transformer_element_bytes = 4;
  model.cpu_convolution = true;
  model.fingerprint = "tiny-a";
  {
    GovernorOptions o = simulated_options(64 * kMiB);
    o.profile_path = path;
    Governor gov(o, nullptr);
    JobShape job;
    job.height = job.width = 64;
    job.latent_window = 1;
    job.text_tokens = 7;
    job.image_tokens = 5;
    gov.plan_job(model, job);
    gov.attach_transformer(*s.transformer);
    s.run(gov.model_wrapper());
  }
  const PeakProfile profile = PeakProfile::load(path);
  const auto& entries = profile.entries();
  const auto it = entries.find(profile_key("simulated", "sampling", model));
  ASSERT_NE(it, entries.end());
  EXPECT_EQ(it->second.samples, 1);  // one section
  EXPECT_GT(it->second.last_measured, 0);
  EXPECT_GT(it->second.last_estimate, 0);
  // The measurement is of activations: well under the weights of the whole model.
  EXPECT_LT(it->second.last_measured, 64 * kMiB);
  std::filesystem::remove(path);
}

// The governor's sampler runs during a phase and tags its samples with it. Event-driven: waits
// (up to a minute, far more than any loaded machine needs) for four tagged samples instead of
// sleeping a fixed time and counting; the rate itself is measured by `bench telemetry`
// (samples / on_median_s), not asserted here. The configured period (20 Hz) is checked as a value.
// The CPU rung of an encoder needs the weights in float32 in RAM: it checks the host first, and a
// host that cannot hold them gets the host rung (caches released, same rung) and then a message
// about RAM, without the encoder ever starting on the CPU.
TEST(Governor, TheCpuRungOfAnEncoderChecksTheHostFirst) {
  SimulatedDeviceScope sim(8 * kMiB);
  HostMemory host;
  host.total = 32LL << 30;
  host.available = kMiB;
  int released = 0;
  std::vector<Event> events;
  GovernorOptions o = simulated_options(8 * kMiB);
  o.telemetry = false;
  o.host_memory = [&] { return host; };
  o.release_host_memory = [&] { ++released; };
  std::vector<std::string> ran_on;
  {
    Governor gov(o, [&](const Event& e) { events.push_back(e); });
    // 16 MiB of weights do not fit the 8 MiB device: its rung fails, the CPU rung is next.
    const auto encode = [&](at::Device d) { ran_on.push_back(d.str()); };
    try {
      gov.run_encoder("image", 16 * kMiB, encode);
      FAIL() << "1 MiB of RAM cannot hold the encoder";
    } catch (const OutOfMemory& e) {
      EXPECT_NE(std::string(e.what()).find("(RAM)"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(ran_on.empty()) << "the encoder started on " << ran_on.front();
    EXPECT_EQ(released, 1);
    const auto r = recoveries(events);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].text("memory"), "device");
    EXPECT_EQ(r[0].text("action"), "on simulated\xE2\x86\x92the CPU");
    EXPECT_EQ(r[1].text("memory"), "host");
    EXPECT_EQ(r[1].text("outcome"), "retry");
    EXPECT_EQ(r[2].text("memory"), "host");
    EXPECT_EQ(r[2].text("outcome"), "failed");

    // With room on the host the same fallback runs on the CPU.
    host.available = 64LL << 30;
    gov.run_encoder("image", 16 * kMiB, encode);
    EXPECT_EQ(ran_on, (std::vector<std::string>{"cpu"}));
  }
}

TEST(Governor, TelemetrySamplesTaggedWithThePhase) {
  EXPECT_EQ(GovernorOptions{}.telemetry_period, std::chrono::milliseconds(50));  // 20 Hz
  SimulatedDeviceScope sim(8 * kMiB);
  std::vector<Event> events;
  std::mutex m;
  std::condition_variable cv;
  const std::string kPhase = "section 3 step 4";
  auto tagged = [&] {
    int n = 0;
    for (const Event& e : events) n += e.type == EventType::kMemory && e.phase == kPhase;
    return n;
  };
  {
    Governor gov(simulated_options(8 * kMiB), [&](const Event& e) {
      std::lock_guard<std::mutex> lock(m);
      events.push_back(e);
      cv.notify_all();
    });
    const PhaseScope phase(kPhase);
    std::unique_lock<std::mutex> lock(m);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return tagged() >= 4; }))
        << tagged() << " tagged samples after a minute";
  }
  std::lock_guard<std::mutex> lock(m);
  EXPECT_GE(tagged(), 4);
}

}  // namespace
}  // namespace framesmith::memory
