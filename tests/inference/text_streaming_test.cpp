// The LLaMA text encoder streamed layer by layer onto the device (FramePack's low-VRAM mode), on
// the simulated device (no GPU): LlamaModel's numbered modules and hooks, and the governor's text
// phase, whose first rung in low-VRAM keeps the LLaMA on the host and copies each module in at
// use. Each test asserts results: the conditioning equal to a plain CPU encode, the rung that ran
// (from the events), the budget never passed, device memory back at its baseline, a cancel
// between layers leaving nothing on the device.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "framesmith/events.h"
#include "framesmith/model_set.h"
#include "framesmith/pipeline.h"
#include "framesmith/units.h"
#include "io/safetensors.h"
#include "memory/governor.h"
#include "memory/planner.h"
#include "memory/residency.h"
#include "memory/simulated_device.h"
#include "models/llama.h"
#include "models/weights.h"
#include "pipeline/conditioning.h"

namespace framesmith {
namespace {

namespace fs = std::filesystem;
using memory::kMiB;
using memory::simulated_device::stats;

const char* kPrompt = "a red fox running through deep snow";
const char* kNegative = "blurry, low quality";

// A LLaMA shaped like LLaMA 8B where it matters here: its embedding (4096 tokens, 512 KiB) is the
// largest module, followed by many smaller layers (16 of ~400 KiB, 6.8 MiB in all).
nlohmann::json streaming_llama_config() {
  return {{"architectures", {"LlamaModel"}},
          {"model_type", "llama"},
          {"hidden_size", 32},
          {"intermediate_size", 1024},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"num_hidden_layers", 16},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"vocab_size", 4096},
          {"max_position_embeddings", 8192},
          {"hidden_act", "silu"},
          {"torch_dtype", "float32"}};
}

// Model sets written by this test, removed at exit.
struct ModelSetDirs {
  ~ModelSetDirs() {
    std::error_code ignored;
    for (const std::string& d : dirs) fs::remove_all(d, ignored);
  }
  std::vector<std::string> dirs;
};
ModelSetDirs& cleanup() {
  static ModelSetDirs c;
  return c;
}

// The tiny model set with the LLaMA above as its text encoder, written once.
const std::string& base_model_set() {
  static const std::string dir = [] {
    const std::string d =
        fs::temp_directory_path() / ("fs_text_streaming_" + std::to_string(::getpid()));
    cleanup().dirs.push_back(d);
    make_tiny_model(d, 5);
    const nlohmann::json tiny =
        nlohmann::json::parse(std::ifstream(d + "/text_encoder/config.json"));
    nlohmann::json cfg = streaming_llama_config();
    EXPECT_LE(tiny["vocab_size"].get<std::int64_t>(), cfg["vocab_size"].get<std::int64_t>());
    std::ofstream(d + "/text_encoder/config.json") << cfg.dump(2);
    io::save_safetensors(
        d + "/text_encoder/model.safetensors",
        make_random_weights(llama_parameter_specs(LlamaConfig::from_json(cfg)), 1234));
    return d;
  }();
  return dir;
}

// A copy of the model set under a new path: encode_text's prompt cache keys on the folders, so a
// copy is encoded afresh (the cache would otherwise answer every run after the first).
std::string fresh_model_set() {
  static int n = 0;
  const std::string d = base_model_set() + "_copy" + std::to_string(++n);
  fs::remove_all(d);
  fs::copy(base_model_set(), d, fs::copy_options::recursive);
  return d;
}

std::string model_set_for_run() {
  const std::string d = fresh_model_set();
  cleanup().dirs.push_back(d);
  return d;
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return 1e30;
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// The largest difference over every tensor of two conditionings (embeds, masks, poolers).
double max_difference(const sampling::HunyuanConditioning& a,
                      const sampling::HunyuanConditioning& b) {
  double worst = 0;
  for (const auto* p : {&a.positive, &a.negative}) {
    const auto& q = p == &a.positive ? b.positive : b.negative;
    worst = std::max(worst, max_abs(p->embeds, q.embeds));
    worst = std::max(worst, max_abs(p->mask, q.mask));
    worst = std::max(worst, max_abs(p->poolers, q.poolers));
  }
  return worst;
}

// The plain CPU encode (no governor, no simulated device) of the prompt pair, CFG on.
const sampling::HunyuanConditioning& reference() {
  static const sampling::HunyuanConditioning r = [] {
    sampling::HunyuanConditioning c;
    pipeline::encode_text(locate_model_set(model_set_for_run()), kPrompt, kNegative, 2.0, at::kCPU,
                          c);
    return c;
  }();
  return r;
}

memory::GovernorOptions options(std::int64_t budget, bool high_vram) {
  memory::GovernorOptions o;
  o.device = memory::ComputeDevice{at::kCPU, true};
  o.budget = budget;
  o.telemetry = false;
  o.limits.preserved_memory = 0;
  // FramePack's threshold is 60 GB free; these budgets are MiB.
  o.limits.high_vram_threshold = high_vram ? 0 : std::int64_t{1} << 40;
  return o;
}

struct TextRun {
  sampling::HunyuanConditioning cond;
  std::vector<Event> events;
  std::int64_t peak = 0;
  std::int64_t allocated_with_cond = 0, cond_bytes = 0;
  std::int64_t allocated_after = 0;  // once the conditioning is released
  std::int64_t llama_bytes = 0, clip_bytes = 0, stream_bytes = 0;
  std::vector<int> modules;  // before_module calls, in order
  bool cancelled = false;
};

// The text phase of a job through the governor on the simulated device, as generate() runs it.
// `on_module(i)`, when set, runs right before the streamer sees module i.
TextRun run_text(std::int64_t budget, bool high_vram, const std::atomic<bool>* cancel = nullptr,
                 const std::function<void(int)>& on_module = nullptr) {
  TextRun run;
  const std::string dir = model_set_for_run();
  const ModelSet models = locate_model_set(dir);
  const memory::ModelFootprint footprint = memory::read_model_footprint(models, false);
  run.llama_bytes = footprint.text_encoder_bytes;
  run.clip_bytes = footprint.text_encoder_2_bytes;
  run.stream_bytes = footprint.text_encoder_stream_bytes;
  memory::simulated_device::reset_counters();
  {
    memory::Governor gov(
        options(budget, high_vram), [&](const Event& e) { run.events.push_back(e); }, cancel);
    // As generate() calls it, with the streamer's hook observed.
    const auto encode = [&](at::Device d, const memory::Governor::LlamaPlacement& place) {
      pipeline::TextEncodeHooks hooks;
      if (place)
        hooks.place_llama = [&](LlamaModel& llama) {
          std::shared_ptr<void> placed = place(llama);
          auto streamer = llama.before_module;
          llama.before_module = [&run, &on_module, streamer](int i) {
            run.modules.push_back(i);
            if (on_module) on_module(i);
            streamer(i);
          };
          return placed;
        };
      pipeline::encode_text(models, kPrompt, kNegative, 2.0, d, run.cond, hooks);
    };
    try {
      gov.run_text_encoder(run.llama_bytes, run.clip_bytes, encode);
    } catch (const Cancelled&) {
      run.cancelled = true;
    }
  }
  run.peak = stats().peak;
  // What the text phase hands on (the padded conditioning, made on the device) is the job's: the
  // device holds at most that, and nothing once it is released.
  run.allocated_with_cond = stats().allocated;
  for (const auto* p : {&run.cond.positive, &run.cond.negative})
    run.cond_bytes += memory::tensor_bytes(p->embeds) + memory::tensor_bytes(p->mask) +
                      memory::tensor_bytes(p->poolers);
  const sampling::HunyuanConditioning copy = [&] {
    memory::HostScope host;
    sampling::HunyuanConditioning c;
    for (auto [from, to] : {std::make_pair(&run.cond.positive, &c.positive),
                            std::make_pair(&run.cond.negative, &c.negative)}) {
      if (!from->embeds.defined()) continue;
      to->embeds = from->embeds.clone();
      to->mask = from->mask.clone();
      to->poolers = from->poolers.clone();
    }
    return c;
  }();
  run.cond = copy;
  run.allocated_after = stats().allocated;
  return run;
}

std::vector<Event> of_type(const TextRun& r, EventType t) {
  std::vector<Event> out;
  for (const Event& e : r.events)
    if (e.type == t) out.push_back(e);
  return out;
}

bool has_residency(const TextRun& r, const std::string& text) {
  for (const Event& e : of_type(r, EventType::kResidency))
    if (e.text("action").find(text) != std::string::npos) return true;
  return false;
}

void print_run(const char* what, const TextRun& r, std::int64_t budget) {
  std::printf(
      "%s: peak %s of %s budget (LLaMA %s, streamed pair %s, CLIP %s), %zu modules, "
      "after %lld B\n",
      what, format_size(double(r.peak)).c_str(), format_size(double(budget)).c_str(),
      format_size(double(r.llama_bytes)).c_str(), format_size(double(r.stream_bytes)).c_str(),
      format_size(double(r.clip_bytes)).c_str(), r.modules.size(), (long long)r.allocated_after);
  for (const Event& e : r.events)
    if (e.type == EventType::kResidency || e.type == EventType::kOomRecovered)
      std::printf("  %s: %s %s\n", e.phase.c_str(), e.text("action").c_str(),
                  e.text("outcome").c_str());
}

// ---------------------------------------------------------------------------------------------
// LlamaModel: modules and hooks

// 0, 1, ..., last.
std::vector<int> modules_up_to(int last) {
  std::vector<int> v;
  for (int i = 0; i <= last; ++i) v.push_back(i);
  return v;
}

std::shared_ptr<LlamaModel> load_base_llama() {
  return load_llama(base_model_set() + "/text_encoder", at::kFloat, at::kCPU);
}

TEST(LlamaModules, CoverEveryParameterOnceInExecutionOrder) {
  auto m = load_base_llama();
  const LlamaConfig& c = m->config();
  ASSERT_EQ(m->num_modules(), c.num_hidden_layers + 2);
  std::set<std::string> names;
  std::set<const at::Tensor*> pointers;
  for (int i = 0; i < m->num_modules(); ++i) {
    const auto refs = m->module_tensors(i);
    ASSERT_FALSE(refs.empty()) << i;
    for (const auto& [name, ptr] : refs) {
      EXPECT_TRUE(names.insert(name).second) << name;
      EXPECT_TRUE(pointers.insert(ptr).second) << name;
      ASSERT_TRUE(ptr->defined()) << name;
      if (i == 0) {
        EXPECT_EQ(name, "embed_tokens.weight");
      } else if (i <= c.num_hidden_layers) {
        EXPECT_EQ(name.rfind("layers." + std::to_string(i - 1) + ".", 0), 0u) << name;
      } else {
        EXPECT_EQ(name, "norm.weight");
      }
    }
  }
  std::set<std::string> specs;
  for (const ParamSpec& p : llama_parameter_specs(c)) specs.insert(p.name);
  EXPECT_EQ(names, specs);
  EXPECT_THROW(m->module_tensors(-1), Error);
  EXPECT_THROW(m->module_tensors(m->num_modules()), Error);
}

TEST(LlamaModules, HooksSeeOnlyTheModulesAForwardUsesAndTheResultIsUnchanged) {
  auto m = load_base_llama();
  const at::Tensor ids = at::arange(3, 40, at::kLong).unsqueeze(0);
  const at::Tensor mask = at::ones_like(ids);
  const std::vector<at::Tensor> all = m->hidden_states(ids, mask);
  const at::Tensor minus3 = m->hidden_state(ids, mask, -3);
  std::vector<int> seen;
  int ends = 0;
  m->before_module = [&](int i) { seen.push_back(i); };
  m->after_forward = [&] { ++ends; };
  // hidden_states[-3] of L + 1: the embedding and layers 0..L-3 (modules 0..L-2), no norm.
  EXPECT_TRUE(at::equal(m->hidden_state(ids, mask, -3), minus3));
  EXPECT_EQ(seen, modules_up_to(m->num_modules() - 4));
  EXPECT_EQ(ends, 1);
  seen.clear();
  const std::vector<at::Tensor> again = m->hidden_states(ids, mask);
  EXPECT_EQ(seen, modules_up_to(m->num_modules() - 1));
  ASSERT_EQ(again.size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_TRUE(at::equal(again[i], all[i])) << i;
  EXPECT_TRUE(at::equal(minus3, all[all.size() - 3]));
  // after_forward runs also when the forward throws.
  m->before_module = [&](int i) {
    if (i == 2) throw Cancelled();
  };
  EXPECT_THROW(m->hidden_state(ids, mask, -3), Cancelled);
  EXPECT_EQ(ends, 3);
}

// Weights swapped for copies between modules (what a streamer does) give the same forward, the
// host tensors untouched.
TEST(LlamaModules, SwappedCopiesGiveTheSameForward) {
  auto m = load_base_llama();
  const at::Tensor ids = at::arange(5, 60, at::kLong).unsqueeze(0);
  const at::Tensor expected = m->hidden_state(ids, at::Tensor(), -3);
  std::vector<std::vector<at::Tensor>> originals;
  for (int i = 0; i < m->num_modules(); ++i) {
    originals.emplace_back();
    for (auto& [name, ptr] : m->module_tensors(i)) originals.back().push_back(*ptr);
  }
  m->set_compute_device(at::kCPU);
  m->before_module = [&](int i) {
    for (auto& [name, ptr] : m->module_tensors(i)) *ptr = ptr->clone();
  };
  EXPECT_TRUE(at::equal(m->hidden_state(ids, at::Tensor(), -3), expected));
  EXPECT_EQ(m->device(), at::Device(at::kCPU));
}

// ---------------------------------------------------------------------------------------------
// The governor's text phase

// Low-VRAM on a budget too small for the LLaMA whole with its activations, large enough for two of
// its modules with them: encoded on the device with the LLaMA streamed per layer, equal to the CPU
// encode, within the budget, nothing left behind. At the same budget the LLaMA loaded whole
// (high-VRAM) runs out of memory and the streamed rung gives the result, still on the device.
TEST(TextStreaming, StreamsTheLlamaWithinABudgetItDoesNotFitInWhole) {
  const sampling::HunyuanConditioning& ref = reference();
  memory::SimulatedDeviceScope sim(64 * kMiB);
  // The peaks of both ways with room to spare; the budget then sits just above the streamed one.
  const TextRun roomy = run_text(64 * kMiB, false);
  print_run("streamed, 64 MiB", roomy, 64 * kMiB);
  const TextRun roomy_whole = run_text(64 * kMiB, true);
  print_run("whole, 64 MiB", roomy_whole, 64 * kMiB);
  ASSERT_TRUE(has_residency(roomy, "LLaMA streamed per layer"));
  ASSERT_TRUE(roomy_whole.modules.empty());
  ASSERT_GT(roomy.stream_bytes, 0);
  ASSERT_LT(roomy.stream_bytes, roomy.llama_bytes / 4);
  const std::int64_t budget = roomy.peak + 256 * 1024;
  // Streaming saves (nearly) all of the LLaMA but two modules.
  EXPECT_GE(roomy_whole.peak - roomy.peak, roomy.llama_bytes - roomy.stream_bytes - 256 * 1024);
  ASSERT_LT(budget, roomy_whole.peak) << "the LLaMA whole with its activations must not fit";

  const TextRun r = run_text(budget, false);
  print_run("streamed", r, budget);
  EXPECT_TRUE(of_type(r, EventType::kOomRecovered).empty()) << "fell back to the CPU";
  EXPECT_TRUE(has_residency(r, "text encoder: LLaMA streamed per layer (18 modules, "));
  EXPECT_TRUE(has_residency(r, "CLIP whole"));
  EXPECT_LE(r.peak, budget);
  // The streamed copies were counted: CLIP and the embedding at least were on the device at once.
  EXPECT_GE(r.peak, r.clip_bytes + 4096 * 32 * 4);
  // Two prompts (CFG on), each through modules 0..14: hidden_states[-3] of 17 is layer 13's
  // output (no later layer, no norm).
  std::vector<int> expected = modules_up_to(14);
  expected.insert(expected.end(), expected.begin(), expected.end());
  EXPECT_EQ(r.modules, expected);
  const double diff = max_difference(r.cond, ref);
  std::printf("max |streamed - CPU| = %g\n", diff);
  EXPECT_LE(diff, 1e-6);
  EXPECT_LE(r.allocated_with_cond, r.cond_bytes);
  EXPECT_EQ(r.allocated_after, 0);

  // High-VRAM loads the LLaMA whole, runs out of memory, and streams it on the device instead
  // (the CPU rung comes after that).
  const TextRun whole = run_text(budget, true);
  print_run("whole (high-vram)", whole, budget);
  EXPECT_EQ(whole.modules, expected);
  EXPECT_TRUE(has_residency(whole, "text encoder: LLaMA streamed per layer (18 modules, "));
  const auto recoveries = of_type(whole, EventType::kOomRecovered);
  ASSERT_EQ(recoveries.size(), 2u);
  EXPECT_EQ(recoveries.front().text("action"),
            "on simulated\xE2\x86\x92simulated, LLaMA streamed per layer");
  EXPECT_EQ(recoveries.back().text("outcome"), "ok");
  EXPECT_LE(whole.peak, budget);
  EXPECT_LE(max_difference(whole.cond, ref), 1e-6);
  EXPECT_EQ(whole.allocated_after, 0);
}

// The plan says what the governor does, and its estimate covers the measured peak while staying
// below the LLaMA loaded whole.
TEST(TextStreaming, PlanStreamsTheLlamaAndItsEstimateCoversThePeak) {
  memory::SimulatedDeviceScope sim(64 * kMiB);
  const TextRun r = run_text(64 * kMiB, false);
  const memory::ModelFootprint fp = memory::read_model_footprint(base_model_set(), false);
  const LlamaConfig cfg = LlamaConfig::from_json(streaming_llama_config());
  const std::int64_t layer = (32 * 32 * 2 + 16 * 32 * 2 + 3 * 1024 * 32 + 2 * 32) * 4;
  // Two layers: the embedding table (cfg.vocab_size x 32) is gathered by row, never placed.
  EXPECT_EQ(fp.text_encoder_stream_bytes, 2 * layer);
  EXPECT_GT(cfg.vocab_size * 32 * 4, layer);  // counted, it would have been the largest module
  memory::JobShape job;
  const memory::MemoryPlan low =
      memory::make_memory_plan(fp, job, 64 * kMiB, options(0, false).limits, memory::PeakProfile(),
                               "simulated", memory::AttentionKernel::kChunked);
  const memory::MemoryPlan high =
      memory::make_memory_plan(fp, job, 64 * kMiB, options(0, true).limits, memory::PeakProfile(),
                               "simulated", memory::AttentionKernel::kChunked);
  ASSERT_NE(low.find("text"), nullptr);
  std::printf("%s\n%s\nmeasured peak %s\n", low.find("text")->line().c_str(),
              high.find("text")->line().c_str(), format_size(double(r.peak)).c_str());
  EXPECT_EQ(low.find("text")->setting, "LLaMA streamed per layer, CLIP whole");
  EXPECT_EQ(high.find("text")->setting, "LLaMA and CLIP resident");
  EXPECT_GE(low.find("text")->estimate, r.peak);
  EXPECT_LT(low.find("text")->estimate + fp.text_encoder_bytes - fp.text_encoder_stream_bytes,
            high.find("text")->estimate + 1);
}

// A cancel during the streamed forward stops it between two layers; nothing stays on the device
// and the CPU rung does not run.
TEST(TextStreaming, CancelBetweenLayersLeavesNothingOnTheDevice) {
  memory::SimulatedDeviceScope sim(64 * kMiB);
  std::atomic<bool> cancel{false};
  const TextRun r = run_text(64 * kMiB, false, &cancel, [&](int i) {
    if (i == 3) cancel = true;  // modules 0..2 ran streamed, module 3 is about to come in
  });
  print_run("cancelled", r, 64 * kMiB);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.modules, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(of_type(r, EventType::kOomRecovered).empty());
  EXPECT_GT(r.peak, r.clip_bytes);
  EXPECT_EQ(r.allocated_after, 0);
  EXPECT_EQ(stats().allocated, 0);
}

// Out of memory inside the streamed forward: the copies go, the CPU rung gives the same result.
TEST(TextStreaming, OutOfMemoryWhileStreamingFallsBackToTheCpu) {
  const sampling::HunyuanConditioning& ref = reference();
  memory::SimulatedDeviceScope sim(64 * kMiB);
  std::int64_t at_failure = -1;
  const TextRun r = run_text(64 * kMiB, false, nullptr, [&](int i) {
    // Layer 2's copy (module 3) is prefetched while module 2 comes in: that allocation fails.
    if (i == 2) memory::simulated_device::fail_next_allocation_larger_than(16 * 1024, "text");
    if (i == 3) at_failure = stats().allocated;
  });
  print_run("oom while streaming", r, 64 * kMiB);
  EXPECT_EQ(at_failure, -1) << "module 3 ran on the device";
  EXPECT_EQ(r.modules, (std::vector<int>{0, 1, 2}));
  const auto recoveries = of_type(r, EventType::kOomRecovered);
  ASSERT_EQ(recoveries.size(), 2u);
  EXPECT_EQ(recoveries[0].text("outcome"), "retry");
  EXPECT_EQ(recoveries[1].text("outcome"), "ok");
  EXPECT_EQ(stats().num_ooms, 1);
  EXPECT_LE(max_difference(r.cond, ref), 1e-6);
  EXPECT_EQ(r.allocated_after, 0);
}

// High-VRAM: the LLaMA is loaded whole (its bytes held on the simulated device), same result.
TEST(TextStreaming, HighVramLoadsTheLlamaWhole) {
  const sampling::HunyuanConditioning& ref = reference();
  memory::SimulatedDeviceScope sim(64 * kMiB);
  const TextRun r = run_text(64 * kMiB, true);
  print_run("whole", r, 64 * kMiB);
  EXPECT_TRUE(r.modules.empty());
  EXPECT_FALSE(has_residency(r, "streamed"));
  EXPECT_TRUE(of_type(r, EventType::kOomRecovered).empty());
  EXPECT_GE(r.peak, r.llama_bytes + r.clip_bytes);
  EXPECT_LE(max_difference(r.cond, ref), 1e-6);
  EXPECT_EQ(r.allocated_after, 0);
}

// A whole job through generate() on a 64 MiB simulated device (low-VRAM), its prompt not cached:
// the text phase streams the LLaMA and the video equals the same job on the plain CPU.
TEST(TextStreaming, AJobStreamsTheLlamaAndMakesTheSameVideo) {
  const auto request = [](std::int64_t budget) {
    GenerationRequest r;
    r.model_dir = model_set_for_run();  // a fresh copy: nothing cached for it
    r.image.width = r.image.height = 64;
    r.image.count = 1;
    r.image.rgb.resize(64 * 64 * 3);
    for (std::size_t i = 0; i < r.image.rgb.size(); ++i)
      r.image.rgb[i] = static_cast<std::uint8_t>((i * 7) % 251);
    r.prompt = kPrompt;
    r.negative_prompt = kNegative;
    r.cfg = 2.0;
    r.seconds = 0.2;
    r.latent_window = 2;
    r.steps = 1;
    r.resolution = 64;
    r.seed = 3;
    r.device = "cpu";
    r.vram_budget_bytes = budget;
    r.preserved_memory_bytes = 0;
    return r;
  };
  const GenerationResult cpu = generate(request(0), {});
  ASSERT_EQ(cpu.status, StatusCode::kOk) << cpu.message;
  const std::int64_t budget = 64 * kMiB;
  memory::SimulatedDeviceScope sim(budget);
  std::vector<Event> events;
  GenerationCallbacks cb;
  cb.on_event = [&](const Event& e) {
    if (e.type != EventType::kMemory) events.push_back(e);
  };
  const GenerationResult r = generate(request(budget), cb);
  ASSERT_EQ(r.status, StatusCode::kOk) << r.message;
  bool streamed = false;
  for (const Event& e : events) {
    if (e.phase != "text") continue;
    std::printf("  %s\n", to_json_line(e).c_str());
    EXPECT_NE(e.type, EventType::kOomRecovered) << to_json_line(e);
    if (e.type == EventType::kPlan) {
      EXPECT_EQ(e.text("setting"), "LLaMA streamed per layer, CLIP whole");
    }
    streamed |=
        e.type == EventType::kResidency &&
        e.text("action").rfind("text encoder: LLaMA streamed per layer (18 modules", 0) == 0;
  }
  EXPECT_TRUE(streamed);
  EXPECT_LE(stats().peak, budget);
  EXPECT_EQ(stats().allocated, 0);
  ASSERT_EQ(r.video.rgb.size(), cpu.video.rgb.size());
  int worst = 0;
  for (std::size_t i = 0; i < r.video.rgb.size(); ++i)
    worst = std::max(worst, std::abs(int(r.video.rgb[i]) - int(cpu.video.rgb[i])));
  EXPECT_LE(worst, 1);
}

// On the plain CPU nothing is streamed (no device memory to stream to).
TEST(TextStreaming, PlainCpuEncodesAsBefore) {
  const sampling::HunyuanConditioning& ref = reference();
  memory::GovernorOptions o;
  o.telemetry = false;
  std::vector<Event> events;
  memory::Governor gov(o, [&](const Event& e) { events.push_back(e); });
  sampling::HunyuanConditioning cond;
  bool placed = false;
  const ModelSet models = locate_model_set(model_set_for_run());
  gov.run_text_encoder(0, 0, [&](at::Device d, const memory::Governor::LlamaPlacement& place) {
    placed = static_cast<bool>(place);
    EXPECT_TRUE(d.is_cpu());
    pipeline::encode_text(models, kPrompt, kNegative, 2.0, d, cond);
  });
  EXPECT_FALSE(placed);
  EXPECT_EQ(max_difference(cond, ref), 0.0);
}

}  // namespace
}  // namespace framesmith
