// The memory governor end to end on the simulated device (no GPU): whole tiny-model generations
// (make_tiny_model, prompt and image encoders included) through generate() with a device budget
// given on the CPU. Each test asserts results: the right frame count and pixels, recovery events,
// the budget never passed, device memory back at its baseline after every job, no growth over
// 20 jobs, and nothing left on the device by a cancel in the middle of a streamed forward.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "framesmith/engine_cli.h"
#include "framesmith/events.h"
#include "framesmith/pipeline.h"
#include "framesmith/units.h"
#include "memory/device_probe.h"
#include "memory/oom_retry.h"
#include "memory/simulated_device.h"
#include "pipeline/conditioning.h"

namespace framesmith {
namespace {

namespace fs = std::filesystem;
using memory::simulated_device::stats;

constexpr std::int64_t kMiB = 1 << 20;

// The tiny model set, written once for the whole file.
const std::string& tiny_model() {
  static const std::string dir = [] {
    const std::string d = fs::temp_directory_path() / ("fs_gov_e2e_" + std::to_string(::getpid()));
    make_tiny_model(d, 7);
    return d;
  }();
  return dir;
}

Frames test_image() {
  Frames f;
  f.width = f.height = 64;
  f.count = 1;
  f.rgb.resize(64 * 64 * 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c)
        f.rgb[(y * 64 + x) * 3 + c] = static_cast<std::uint8_t>((x * 4 + y * 2 * c + 40 * c) % 256);
  return f;
}

// Two sections of two latent frames at 64 x 64: 5 latents -> 17 frames.
GenerationRequest tiny_request(std::int64_t budget) {
  GenerationRequest r;
  r.model_dir = tiny_model();
  r.image = test_image();
  r.prompt = "a red fox in the snow";
  r.seconds = 0.5;
  r.latent_window = 2;
  r.steps = 2;
  r.resolution = 64;
  r.cache =
      StepCache::kNone;  // a retried step then recomputes exactly what the first try would have
  r.seed = 99;
  r.device = "cpu";
  r.vram_budget_bytes = budget;
  r.preserved_memory_bytes = 0;
  return r;
}

struct JobRun {
  GenerationResult result;
  std::vector<Event> events;
  std::int64_t peak = 0;
  std::int64_t allocated_after = 0;
  std::int64_t num_ooms = 0;  // refusals the simulated allocator counted (faults included)
};

// Each job encodes its prompt (a prompt cached by an earlier job skips the text phase, whose
// events, recoveries and cache flushes these tests count).
JobRun run_job(const GenerationRequest& req, const std::atomic<bool>* cancel = nullptr,
               const std::function<void(const Event&)>& also = nullptr) {
  pipeline::clear_prompt_cache();
  JobRun run;
  std::mutex m;
  GenerationCallbacks cb;
  cb.cancel = cancel;
  cb.on_event = [&](const Event& e) {
    {
      std::lock_guard<std::mutex> lock(m);
      run.events.push_back(e);
    }
    if (also) also(e);
  };
  run.result = generate(req, cb);
  run.peak = stats().peak;
  run.allocated_after = stats().allocated;
  run.num_ooms = stats().num_ooms;
  return run;
}

std::vector<Event> of_type(const JobRun& r, EventType t) {
  std::vector<Event> out;
  for (const Event& e : r.events)
    if (e.type == t) out.push_back(e);
  return out;
}

int max_pixel_difference(const Frames& a, const Frames& b) {
  if (a.rgb.size() != b.rgb.size()) return 1 << 20;
  int worst = 0;
  for (std::size_t i = 0; i < a.rgb.size(); ++i)
    worst = std::max(worst, std::abs(int(a.rgb[i]) - int(b.rgb[i])));
  return worst;
}

// The reference: the same job on the plain CPU (no budget, nothing simulated).
const JobRun& reference() {
  static const JobRun r = run_job(tiny_request(0));
  return r;
}

// Common checks of a simulated job: what the budget refused was reported, and device memory is
// back at its baseline afterwards. Not "peak <= budget" (by the allocator's peak or by a telemetry
// sample): the simulated allocator refuses anything past the budget, so neither could ever fail.
// Instead: every recovery that retried or gave up reports a real refusal of the allocator (its
// message, with the size it refused), and the allocator counted exactly that many refusals (none
// was swallowed without a report, none reported that the allocator did not make).
void expect_within_budget_and_clean(const JobRun& r, std::int64_t budget, std::int64_t baseline) {
  std::size_t refusals = 0;
  for (const Event& e : of_type(r, EventType::kOomRecovered)) {
    const std::string outcome = e.text("outcome");
    if (outcome != "retry" && outcome != "failed") continue;
    ++refusals;
    const std::string message = e.text("message");
    EXPECT_NE(message.find("Simulated device out of memory"), std::string::npos) << to_json_line(e);
    EXPECT_GT(e.number("requested", -1), 0) << to_json_line(e);
    EXPECT_EQ(memory::requested_bytes_from_message(message),
              std::int64_t(e.number("requested", -1)))
        << to_json_line(e);
    EXPECT_EQ(e.number("budget", -1), double(budget)) << to_json_line(e);
  }
  std::printf(
      "  peak %s of %s budget, %zu recovery events, %zu refusals reported, %lld counted, "
      "%.2f s, device after: %lld B\n",
      format_size(double(r.peak)).c_str(), format_size(double(budget)).c_str(),
      of_type(r, EventType::kOomRecovered).size(), refusals, (long long)r.num_ooms,
      r.events.empty() ? 0.0 : r.events.back().t_s, (long long)r.allocated_after);
  EXPECT_EQ(r.num_ooms, std::int64_t(refusals));
  EXPECT_GT(r.peak, 0);
  EXPECT_EQ(r.allocated_after, baseline);
  for (const Event& e : of_type(r, EventType::kMemory))
    EXPECT_EQ(e.number("budget"), double(budget));
}

// The recovery events of `phase`: a retry (with what was asked, what was free and the action),
// then the outcome "ok".
void expect_recovered(const JobRun& r, const std::string& phase_prefix) {
  bool retry = false, ok = false;
  for (const Event& e : of_type(r, EventType::kOomRecovered)) {
    if (e.phase.rfind(phase_prefix, 0) != 0) continue;
    if (e.text("outcome") == "retry") {
      retry = true;
      EXPECT_GT(e.number("requested", -1), 0) << to_json_line(e);
      EXPECT_GE(e.number("free", -1), 0) << to_json_line(e);
      EXPECT_FALSE(e.text("action").empty()) << to_json_line(e);
    }
    if (e.text("outcome") == "ok" && retry) ok = true;
    EXPECT_NE(e.text("outcome"), "failed") << to_json_line(e);
  }
  EXPECT_TRUE(retry) << "no oom_recovered retry in phase " << phase_prefix;
  EXPECT_TRUE(ok) << "no oom_recovered ok in phase " << phase_prefix;
}

// How far a measured peak may be from its estimate (see the peak test): the ±15 % the estimates
// are held to, above; below, the tiny job's lowest is the text phase at ~0.72 (its activation
// terms are sized for the full model's proportions); sampling is ~0.98 (the token refiner on the
// padded prompt is its peak: planned for the prompt's real length without it, the estimate was
// 15x too small), VAE encode and decode ~1.0.
constexpr double kEstimateCovers = 1.15;
constexpr double kEstimateAtLeast = 0.5;

// 1 + 4 (T - 1) frames for T = sections * window + 1 latents (FramePack's original loop).
int expected_frames(const GenerationRequest& r, int sections) {
  return 1 + 4 * (sections * r.latent_window);
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

// The reference job runs first, on the plain CPU: it also warms what the engine caches for the
// process (the prompt cache of pipeline/conditioning_encode.cpp keeps each prompt's embeddings,
// ~60 KiB here). Filled during a simulated job those would count as device memory for good,
// although they are host tensors (on the CPU `.to(kCPU)` cannot move them off the "device").
class GovernorE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { reference(); }
};

TEST_F(GovernorE2E, ReferenceRunsOnThePlainCpu) {
  const JobRun& ref = reference();
  ASSERT_EQ(ref.result.status, StatusCode::kOk) << ref.result.message;
  EXPECT_EQ(ref.result.sections_total, 2);
  EXPECT_EQ(ref.result.video.count, expected_frames(tiny_request(0), 2));
  EXPECT_EQ(ref.result.video.width, 64);
}

// Every phase starts at its largest setting (as a plan that guessed wrong would): the whole
// decode needs ~130 MiB, the budget is 16 MiB. The job completes through recovery.
TEST_F(GovernorE2E, WholeDecodeOverBudgetCompletesThroughRecovery) {
  const ScopedEnv largest("FRAMESMITH_MEMORY_PLAN", "largest");
  const std::int64_t budget = 16 * kMiB;
  const JobRun r = run_job(tiny_request(budget));
  ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
  EXPECT_EQ(r.result.video.count, reference().result.video.count);
  EXPECT_LE(max_pixel_difference(r.result.video, reference().result.video), 1);
  expect_within_budget_and_clean(r, budget, 0);
  expect_recovered(r, "decode chunk");
  for (const Event& e : of_type(r, EventType::kOomRecovered))
    std::printf("  %s: %s (%s)\n", e.phase.c_str(), e.text("action").c_str(),
                e.text("outcome").c_str());
  std::printf("  reference job (plain CPU, no governor budget): %.2f s\n",
              reference().events.back().t_s);
  // The first decode recovery steps down from the largest chunk.
  for (const Event& e : of_type(r, EventType::kOomRecovered))
    if (e.phase.rfind("decode chunk", 0) == 0) {
      EXPECT_EQ(e.text("action").rfind("chunk 16\xE2\x86\x92", 0), 0u) << e.text("action");
      break;
    }
  // A plan for every phase was reported, and the telemetry sampled, tagged with the phase. (No
  // rate bound: samples per second depend on the machine's load; `bench telemetry` measures it.)
  // (Sampling and decode twice: planned again for the prompt's real length once it is encoded.)
  std::set<std::string> planned;
  for (const Event& e : of_type(r, EventType::kPlan)) planned.insert(e.phase);
  EXPECT_EQ(planned.size(), 5u);
  EXPECT_EQ(of_type(r, EventType::kPlan).size(), 7u);
  const auto samples = of_type(r, EventType::kMemory);
  EXPECT_FALSE(samples.empty());
  EXPECT_TRUE(std::any_of(samples.begin(), samples.end(),
                          [](const Event& e) { return e.phase.rfind("decode chunk", 0) == 0; }));
}

// An out-of-memory error injected into each phase is recovered, and the video is the same.
TEST_F(GovernorE2E, OomInjectedAtEveryPhaseIsRecovered) {
  const std::int64_t budget = 64 * kMiB;
  for (const std::string phase :
       {"text", "image", "vae encode", "section 1 step 1", "section 2 step 2", "decode chunk 5"}) {
    memory::SimulatedDeviceScope sim(budget);
    memory::simulated_device::fail_next_allocation_larger_than(0, phase);
    const JobRun r = run_job(tiny_request(budget));
    ASSERT_EQ(r.result.status, StatusCode::kOk) << phase << ": " << r.result.message;
    EXPECT_EQ(stats().num_ooms, 1) << phase;
    EXPECT_EQ(r.result.video.count, reference().result.video.count) << phase;
    EXPECT_LE(max_pixel_difference(r.result.video, reference().result.video), 1) << phase;
    expect_within_budget_and_clean(r, budget, 0);
    expect_recovered(r, phase);
    if (phase.rfind("section", 0) == 0)
      for (const Event& e : of_type(r, EventType::kOomRecovered)) {
        EXPECT_EQ(e.number("section"), phase[8] - '0');
        EXPECT_EQ(e.number("step"), phase.back() - '0');
      }
  }
}

// The cache is emptied at phase boundaries only (FramePack's unload / load / offload points):
// after the text, image and VAE encoders, before each section's placement of the transformer,
// after each decode's offloading and after its unload, and at the end. Never per sampling step:
// more steps, the same count.
TEST_F(GovernorE2E, CacheIsEmptiedAtPhaseBoundariesNotPerStep) {
  const std::int64_t budget = 64 * kMiB;
  std::int64_t flushes[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    memory::SimulatedDeviceScope sim(budget);
    GenerationRequest req = tiny_request(budget);
    req.steps = 2 + 3 * i;
    const JobRun r = run_job(req);
    ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
    EXPECT_EQ(stats().num_ooms, 0);
    flushes[i] = stats().num_cache_flushes;
  }
  const std::int64_t sections = 2;
  EXPECT_EQ(flushes[0], 3 + sections * (1 + 2) + 1);
  EXPECT_EQ(flushes[1], flushes[0]);
}

// ... and at a random step, at a random allocation size within it (seed printed).
TEST_F(GovernorE2E, OomAtARandomStepIsRecovered) {
  // FRAMESMITH_TEST_SEED repeats a run.
  const char* fixed = std::getenv("FRAMESMITH_TEST_SEED");
  const unsigned seed = fixed ? unsigned(std::stoul(fixed)) : std::random_device{}();
  std::mt19937 rng(seed);
  const std::string phase =
      "section " + std::to_string(1 + rng() % 2) + " step " + std::to_string(1 + rng() % 2);
  const std::int64_t larger_than = rng() % (64 * 1024);
  SCOPED_TRACE("seed " + std::to_string(seed) + ": " + phase + ", allocation > " +
               std::to_string(larger_than));
  const std::int64_t budget = 64 * kMiB;
  // The measured peaks are remembered where FRAMESMITH_MEMORY_PROFILE says.
  const std::string profile =
      fs::temp_directory_path() / ("fs_gov_profile_" + std::to_string(::getpid()) + ".json");
  const ScopedEnv env("FRAMESMITH_MEMORY_PROFILE", profile.c_str());
  memory::SimulatedDeviceScope sim(budget);
  memory::simulated_device::fail_next_allocation_larger_than(larger_than, phase);
  const JobRun r = run_job(tiny_request(budget));
  ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
  EXPECT_EQ(stats().num_ooms, 1);
  EXPECT_LE(max_pixel_difference(r.result.video, reference().result.video), 1);
  expect_within_budget_and_clean(r, budget, 0);
  expect_recovered(r, phase);
  std::ifstream in(profile);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"simulated/decode/"), std::string::npos) << text;
  EXPECT_NE(text.find("\"simulated/vae encode/"), std::string::npos) << text;
  fs::remove(profile);
}

// A streamed step's activation peak cannot be told exactly from the streamed copies it held, so
// it is reported (a `peak` event) but not learnt: a low reading must never shrink a later plan.
// A step with every module resident measures exactly and is learnt.
TEST_F(GovernorE2E, AStreamedStepsPeakIsReportedButNotLearnt) {
  const std::string profile =
      fs::temp_directory_path() / ("fs_gov_learn_" + std::to_string(::getpid()) + ".json");
  fs::remove(profile);
  const ScopedEnv env("FRAMESMITH_MEMORY_PROFILE", profile.c_str());
  const auto profile_text = [&] {
    std::ifstream in(profile);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  {
    const std::int64_t budget = 16 * kMiB;
    GenerationRequest req = tiny_request(budget);
    req.preserved_memory_bytes = budget;  // no block fits under the preserved memory: all stream
    memory::SimulatedDeviceScope sim(budget);
    const JobRun r = run_job(req);
    ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
    int sampling_peaks = 0;
    for (const Event& e : of_type(r, EventType::kPeak)) sampling_peaks += e.phase == "sampling";
    EXPECT_EQ(sampling_peaks, 2);
    const std::string text = profile_text();
    EXPECT_NE(text.find("\"simulated/decode/"), std::string::npos) << text;
    EXPECT_EQ(text.find("\"simulated/sampling/"), std::string::npos) << text;
  }
  {
    const std::int64_t budget = 64 * kMiB;
    memory::SimulatedDeviceScope sim(budget);
    const JobRun r = run_job(tiny_request(budget));
    ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
    const std::string text = profile_text();
    EXPECT_NE(text.find("\"simulated/sampling/"), std::string::npos) << text;
  }
  fs::remove(profile);
}

// When the smallest setting fails the job stops with a message saying what it needed.
// "peak <= budget" cannot fail on the simulated device (it refuses anything past the budget);
// the planner's estimate can be wrong in both directions. Every measured phase reports its peak
// next to its estimate, and on the tiny model no peak passes its estimate by more than 15 % and
// no estimate is a blanket over-estimate. Counting by default makes this a check on the marks too:
// an allocation someone forgot to mark as host data raises `measured` past the estimate.
TEST_F(GovernorE2E, EveryMeasuredPhaseReportsItsPeakNextToItsEstimate) {
  const JobRun r = run_job(tiny_request(64 * kMiB));
  ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
  std::map<std::string, int> seen;
  for (const Event& e : of_type(r, EventType::kPeak)) {
    ++seen[e.phase];
    const double estimate = e.number("estimate"), measured = e.number("measured");
    std::printf("  %s\n", to_json_line(e).c_str());
    EXPECT_GT(measured, 0) << to_json_line(e);
    EXPECT_DOUBLE_EQ(e.number("ratio"), measured / estimate) << to_json_line(e);
    EXPECT_LE(measured, estimate * kEstimateCovers) << to_json_line(e);
    EXPECT_GE(measured, estimate * kEstimateAtLeast) << to_json_line(e);
    EXPECT_GE(e.number("unmarked_peak", -1), 0) << to_json_line(e);
  }
  EXPECT_EQ(seen["text"], 1);  // the plan's whole estimate of the phase (scope "phase")
  EXPECT_EQ(seen["image"], 1);
  EXPECT_EQ(seen["vae encode"], 1);
  EXPECT_EQ(seen["sampling"], 2);  // the first step of each of the two sections
  EXPECT_EQ(seen["decode"], 2);
}

TEST_F(GovernorE2E, TooSmallABudgetFailsWithWhatItNeeded) {
  const std::int64_t budget = 2 * kMiB;
  const JobRun r = run_job(tiny_request(budget));
  EXPECT_EQ(r.result.status, StatusCode::kOutOfMemory);
  EXPECT_NE(r.result.message.find("even at its smallest setting"), std::string::npos)
      << r.result.message;
  EXPECT_NE(r.result.message.find("tried to allocate"), std::string::npos) << r.result.message;
  expect_within_budget_and_clean(r, budget, 0);
  const auto recoveries = of_type(r, EventType::kOomRecovered);
  ASSERT_FALSE(recoveries.empty());
  EXPECT_EQ(recoveries.back().text("outcome"), "failed");
}

long resident_set_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// 20 jobs in a row: device memory back at 0 after each, host tensors and the process's resident
// memory do not grow.
TEST_F(GovernorE2E, TwentyJobsDoNotGrowMemory) {
  GenerationRequest req = tiny_request(16 * kMiB);
  req.seconds = 0.2;  // one section
  req.steps = 1;
  std::int64_t host_after_first = 0;
  long rss_after_third = 0;
  for (int job = 1; job <= 20; ++job) {
    const JobRun r = run_job(req);
    ASSERT_EQ(r.result.status, StatusCode::kOk) << "job " << job << ": " << r.result.message;
    ASSERT_EQ(r.allocated_after, 0) << "job " << job;
    ASSERT_GT(r.peak, 0) << "job " << job;  // (peak <= budget holds by construction: not checked)
    if (job == 1) host_after_first = stats().host_allocated;
    EXPECT_LE(stats().host_allocated, host_after_first + kMiB) << "job " << job;
    if (job == 3) rss_after_third = resident_set_bytes();
  }
  const long growth = resident_set_bytes() - rss_after_third;
  std::printf("resident memory growth over jobs 4..20: %.1f MiB\n", growth / double(kMiB));
  EXPECT_LT(growth, 32 * kMiB);
}

// A cancel that lands inside a forward whose blocks are all streamed: the job stops between two
// blocks and nothing stays on the device.
TEST_F(GovernorE2E, CancelDuringAStreamedForwardLeavesNothingResident) {
  const std::int64_t budget = 16 * kMiB;
  GenerationRequest req = tiny_request(budget);
  req.preserved_memory_bytes = budget;  // no block fits under the preserved memory: all stream
  memory::SimulatedDeviceScope sim(budget);
  // The step's first try fails; the cancel arrives with its recovery event, so the retried
  // forward is the one that sees it (at its next block).
  memory::simulated_device::fail_next_allocation_larger_than(0, "section 1 step 1");
  std::atomic<bool> cancel{false};
  const JobRun r = run_job(req, &cancel, [&](const Event& e) {
    if (e.type == EventType::kOomRecovered && e.text("outcome") == "retry") cancel = true;
  });
  EXPECT_EQ(r.result.status, StatusCode::kCancelled) << r.result.message;
  bool streamed = false;
  for (const Event& e : of_type(r, EventType::kResidency))
    streamed |= e.text("action").find("(0 of 4 blocks") != std::string::npos;
  EXPECT_TRUE(streamed) << "the transformer was not streamed";
  expect_within_budget_and_clean(r, budget, 0);
}

// ---------------------------------------------------------------------------------------------
// The same checks on CUDA (tools/gpu_memory_check.sh): skipped unless FRAMESMITH_GPU_CHECK is set
// and a GPU is visible. The budget (FRAMESMITH_GPU_BUDGET, e.g. 6GiB or 24GiB) becomes the
// caching allocator's memory fraction, which emulates a card of that size.

class GovernorGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("FRAMESMITH_GPU_CHECK") == nullptr || !at::hasCUDA() ||
        !memory::cuda_probe_available())
      GTEST_SKIP() << "CUDA check: set FRAMESMITH_GPU_CHECK=1 on a machine with a GPU";
    const char* b = std::getenv("FRAMESMITH_GPU_BUDGET");
    budget_ = parse_size(b ? b : "6GiB");
    probe_ = memory::make_cuda_probe(0, budget_);
    probe_->empty_cache();
    baseline_ = probe_->snapshot().allocated;
  }

  GenerationRequest request(int resolution) const {
    GenerationRequest r = tiny_request(budget_);
    r.device = "cuda";
    r.resolution = resolution;
    Frames big;
    big.width = big.height = resolution;
    big.count = 1;
    big.rgb.resize(std::size_t(resolution) * resolution * 3);
    for (std::size_t i = 0; i < big.rgb.size(); ++i) big.rgb[i] = std::uint8_t((i * 7) % 251);
    r.image = big;
    return r;
  }

  // Runs a job and checks the CUDA-side invariants: peak within the budget, memory back at the
  // baseline.
  JobRun run_checked(const GenerationRequest& req, const std::atomic<bool>* cancel = nullptr,
                     const std::function<void(const Event&)>& also = nullptr) {
    probe_->reset_peak();
    JobRun r = run_job(req, cancel, also);
    const memory::MemorySnapshot s = probe_->snapshot();
    std::printf(
        "[cuda] %s: peak %s of %s budget, allocated after %s (baseline %s), %zu "
        "recoveries\n",
        to_string(r.result.status), format_size(double(s.peak)).c_str(),
        format_size(double(req.vram_budget_bytes)).c_str(),
        format_size(double(s.allocated)).c_str(), format_size(double(baseline_)).c_str(),
        of_type(r, EventType::kOomRecovered).size());
    EXPECT_LE(s.peak, req.vram_budget_bytes);
    // cuBLAS / cuDNN keep their workspaces (allocated through the caching allocator) after the
    // first job; everything of the job itself is gone.
    EXPECT_LE(s.allocated, baseline_ + kWorkspaceSlack);
    return r;
  }

  static constexpr std::int64_t kWorkspaceSlack = 64 * kMiB;
  std::int64_t budget_ = 0, baseline_ = 0;
  std::unique_ptr<memory::MemoryProbe> probe_;
};

TEST_F(GovernorGpu, TinyJobWithinTheBudget) {
  const GenerationRequest req = request(640);
  const JobRun r = run_checked(req);
  ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
  EXPECT_EQ(r.result.video.count, expected_frames(req, r.result.sections_total));
}

// A budget the whole decode does not fit in, every phase at its largest setting: real CUDA OOMs,
// recovered.
TEST_F(GovernorGpu, RealOutOfMemoryIsRecovered) {
  const ScopedEnv largest("FRAMESMITH_MEMORY_PLAN", "largest");
  GenerationRequest req = request(640);
  req.vram_budget_bytes = std::min<std::int64_t>(budget_, 768 * kMiB);
  const JobRun r = run_checked(req);
  ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
  expect_recovered(r, "decode chunk");
}

TEST_F(GovernorGpu, TwentyJobsDoNotGrowMemory) {
  GenerationRequest req = request(256);
  req.seconds = 0.2;
  req.steps = 1;
  std::int64_t reserved_after_first = 0, allocated_after_first = 0;
  for (int job = 1; job <= 20; ++job) {
    const JobRun r = run_checked(req);
    ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
    probe_->empty_cache();
    const memory::MemorySnapshot s = probe_->snapshot();
    if (job == 1) {
      reserved_after_first = s.reserved;
      allocated_after_first = s.allocated;
    }
    EXPECT_EQ(s.allocated, allocated_after_first) << "job " << job;
    EXPECT_LE(s.reserved, reserved_after_first + 64 * kMiB) << "job " << job;
  }
}

TEST_F(GovernorGpu, CancelDuringSamplingLeavesNothingResident) {
  GenerationRequest req = request(640);
  req.preserved_memory_bytes = req.vram_budget_bytes;  // every block streams
  std::atomic<bool> cancel{false};
  const JobRun r = run_checked(req, &cancel, [&](const Event& e) {
    if (e.phase.rfind("section 1 step", 0) == 0) cancel = true;
  });
  EXPECT_EQ(r.result.status, StatusCode::kCancelled) << r.result.message;
}

// FRAMESMITH_GPU_MODEL_DIR: a real FramePack model set (folder or "hf"); one short job.
TEST_F(GovernorGpu, RealModelShortJob) {
  const char* dir = std::getenv("FRAMESMITH_GPU_MODEL_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set FRAMESMITH_GPU_MODEL_DIR to check the real model";
  GenerationRequest req = request(640);
  req.model_dir = dir;
  req.seconds = 1.0;
  req.latent_window = 9;
  req.steps = 4;
  req.preserved_memory_bytes = std::min<std::int64_t>(6LL << 30, budget_ / 4);
  const JobRun r = run_checked(req);
  ASSERT_EQ(r.result.status, StatusCode::kOk) << r.result.message;
  EXPECT_EQ(r.result.video.count, expected_frames(req, r.result.sections_total));
  for (const Event& e : of_type(r, EventType::kPlan)) std::printf("  %s\n", e.text("line").c_str());
}

}  // namespace
}  // namespace framesmith
