// Memory governor foundation: the simulated device (budgeted CPU allocator), probes, telemetry,
// allocator set-up and the OOM ladder. Every test that installs the simulated device does so with
// an RAII SimulatedDeviceScope, so LibTorch's CPU allocator is restored even when a check fails.
#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/events.h"
#include "framesmith/units.h"
#include "memory/allocator_setup.h"
#include "memory/device_probe.h"
#include "memory/host_memory.h"
#include "memory/oom_retry.h"
#include "memory/phase.h"
#include "memory/simulated_device.h"
#include "memory/telemetry.h"

using framesmith::Error;
using framesmith::Event;
using framesmith::EventType;
using framesmith::format_size;
using framesmith::parse_size;
using namespace framesmith::memory;

namespace {

constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = 1024 * 1024;

std::int64_t allocated() {
  return simulated_device::stats().allocated;
}

std::string temp_path(const std::string& name) {
  static std::string dir = [] {
    char tmpl[] = "/tmp/fs_mem_XXXXXX";
    return std::string(::mkdtemp(tmpl));
  }();
  return dir + "/" + name;
}

// ----------------------------------------------------------------------------------------------
// Simulated device

TEST(SimulatedDevice, InstallsAndRestoresTheCpuAllocator) {
  c10::Allocator* before = c10::GetCPUAllocator();
  {
    SimulatedDeviceScope sim(64 * kMiB);
    EXPECT_NE(c10::GetCPUAllocator(), before);
    EXPECT_TRUE(simulated_device::installed());
    EXPECT_EQ(simulated_device::stats().budget, 64 * kMiB);
    EXPECT_THROW(SimulatedDeviceScope nested(kMiB), Error);
    EXPECT_EQ(c10::GetCPUAllocator()->raw_deleter() != nullptr, true);
  }
  EXPECT_EQ(c10::GetCPUAllocator(), before);
  EXPECT_FALSE(simulated_device::installed());
  EXPECT_THROW(SimulatedDeviceScope bad(0), Error);
  EXPECT_EQ(c10::GetCPUAllocator(), before);
}

TEST(SimulatedDevice, CountsEveryAllocationByDefault) {
  SimulatedDeviceScope sim(64 * kMiB);
  const std::int64_t base = allocated();
  at::Tensor unmarked = at::empty({1024}, at::kFloat);
  EXPECT_EQ(allocated(), base + 4096) << "an allocation nobody marked is a device allocation";
  EXPECT_EQ(simulated_device::stats().unmarked, 4096);
  EXPECT_EQ(current_placement(), Placement::kUnmarked);
  at::Tensor device, from_thread;
  {
    HostScope host_scope;
    EXPECT_EQ(current_placement(), Placement::kHost);
    at::Tensor staged = at::empty({256}, at::kFloat);
    EXPECT_EQ(allocated(), base + 4096) << "HostScope allocations are not device bytes";
    EXPECT_GE(simulated_device::stats().host_allocated, 1024);
    {
      OnDeviceScope on_device;  // the innermost scope wins
      device = at::empty({1000}, at::kFloat);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(device.data_ptr()) % 64, 0u);
    }
    EXPECT_EQ(current_placement(), Placement::kHost);
    EXPECT_EQ(allocated(), base + 4096 + 4000);
    EXPECT_EQ(simulated_device::stats().unmarked, 4096) << "an OnDeviceScope is a mark";
    // Another thread carries no scope of this one: what it allocates counts, as an intra-op
    // worker's scratch would on a GPU.
    std::thread([&] { from_thread = at::empty({500}, at::kFloat); }).join();
    EXPECT_EQ(allocated(), base + 4096 + 4000 + 2000);
    unmarked = at::Tensor();  // freed inside a HostScope: still attributed where it was counted
    EXPECT_EQ(allocated(), base + 4000 + 2000);
  }
  EXPECT_EQ(current_placement(), Placement::kUnmarked);
  EXPECT_EQ(simulated_device::stats().unmarked, 2000);
  EXPECT_EQ(simulated_device::stats().unmarked_peak, 4096 + 2000);
  device = at::Tensor();
  EXPECT_EQ(allocated(), base + 2000);
  EXPECT_EQ(simulated_device::stats().peak, base + 4096 + 4000 + 2000);
}

// A forgotten mark over-counts: inside a phase, an allocation nobody marked is refused by the
// budget exactly as device work would be (the OOM names the phase), and nothing leaks.
TEST(SimulatedDevice, AnUnmarkedAllocationInAPhaseIsRefusedByTheBudget) {
  SimulatedDeviceScope sim(kMiB);
  const std::int64_t base = allocated();
  PhaseScope phase("decode chunk 1");
  try {
    at::Tensor big = at::empty({2 * kMiB}, at::kByte);
    FAIL() << "2 MiB unmarked should not fit a 1 MiB device";
  } catch (const c10::OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("decode chunk 1"), std::string::npos);
  }
  EXPECT_EQ(allocated(), base);
  EXPECT_EQ(simulated_device::stats().num_ooms, 1);
  {
    HostScope host;  // the same bytes marked as host data pass
    at::Tensor big = at::empty({2 * kMiB}, at::kByte);
    EXPECT_EQ(allocated(), base);
  }
}

TEST(SimulatedDevice, FreeAfterUninstallIsStillAttributed) {
  at::Tensor survivor;
  std::int64_t base = 0;
  {
    SimulatedDeviceScope sim(kMiB);
    base = allocated();
    OnDeviceScope on_device;
    survivor = at::ones({64, 64});
    EXPECT_EQ(allocated(), base + 64 * 64 * 4);
  }
  EXPECT_FLOAT_EQ(survivor.sum().item<float>(), 4096.0f);
  survivor = at::Tensor();
  EXPECT_EQ(allocated(), base);
}

TEST(SimulatedDevice, CopyToDeviceCountsTheCopy) {
  at::Tensor weight = at::randn({32, 32});
  SimulatedDeviceScope sim(kMiB);
  const std::int64_t base = allocated();
  at::Tensor on_device = simulated_device::copy_to_device(weight);
  EXPECT_EQ(allocated(), base + 32 * 32 * 4);
  EXPECT_TRUE(on_device.equal(weight));
}

TEST(SimulatedDevice, MatmulPastTheBudgetThrowsCatchableOomWithoutLeaking) {
  at::Tensor a = at::randn({256, 256});
  at::Tensor b = at::randn({256, 256});
  SimulatedDeviceScope sim(200 * kKiB);  // the 256 KiB product does not fit
  const std::int64_t base = allocated();
  {
    OnDeviceScope on_device;
    PhaseScope phase("matmul test");
    try {
      at::Tensor c = at::matmul(a, b);
      FAIL() << "matmul should not fit in 200 KiB";
    } catch (const c10::OutOfMemoryError& e) {
      const std::string msg = e.what_without_backtrace();
      EXPECT_NE(msg.find("Tried to allocate 256.0 KiB (262144 bytes)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("free of 200.0 KiB budget"), std::string::npos) << msg;
      EXPECT_NE(msg.find("matmul test"), std::string::npos) << msg;
      EXPECT_EQ(requested_bytes_from_message(msg), 262144);
    }
  }
  EXPECT_EQ(allocated(), base);
  EXPECT_EQ(simulated_device::stats().num_ooms, 1);
  EXPECT_LE(simulated_device::stats().peak, 200 * kKiB);
}

// Runs conv3d on the simulated device: past a small budget, then fitting, then with each of its
// device allocations failed in turn (scratch buffers inside the kernel too). Every failure must be
// a catchable OutOfMemoryError and leave no device bytes behind.
void check_conv3d_oom(const char* label, at::IntArrayRef x_shape, at::IntArrayRef w_shape) {
  at::Tensor x = at::randn(x_shape);
  at::Tensor w = at::randn(w_shape);
  at::Tensor bias = at::randn({w_shape[0]});
  const at::Tensor expected = at::conv3d(x, w, bias, 1, 1);
  const std::int64_t out_bytes = expected.numel() * 4;
  SimulatedDeviceScope sim(1024 * kMiB);
  const std::int64_t base = allocated();

  {  // Too small a budget: the output alone does not fit.
    simulated_device::set_budget(base + out_bytes / 2);
    OnDeviceScope on_device;
    EXPECT_THROW(at::conv3d(x, w, bias, 1, 1), c10::OutOfMemoryError) << label;
  }
  EXPECT_EQ(allocated(), base) << label;

  simulated_device::set_budget(1024 * kMiB);
  simulated_device::reset_counters();
  at::Tensor y;
  {
    OnDeviceScope on_device;
    y = at::conv3d(x, w, bias, 1, 1);
  }
  const SimulatedDeviceStats clean = simulated_device::stats();  // the conv's allocations only
  EXPECT_TRUE(y.allclose(expected, 1e-4, 1e-4)) << label;
  y = at::Tensor();
  EXPECT_EQ(allocated(), base) << label;
  ASSERT_GE(clean.num_allocations, 1) << label;
  EXPECT_GE(clean.peak, base + out_bytes) << label;
  std::cout << "[conv3d " << label << "] " << clean.num_allocations << " device allocations, peak "
            << format_size(clean.peak - base) << "\n";

  // Each allocation fails once in turn: the conv either throws the OOM (nothing leaked) or, where
  // the library has a fallback for that allocation (LibTorch 2.x's oneDNN retries some scratchpads
  // another way), completes with the same result. The output's own allocation can never be
  // worked around, so at least one failure must surface.
  int surfaced = 0;
  for (std::int64_t n = 1; n <= clean.num_allocations; ++n) {
    simulated_device::fail_nth_allocation(n);
    OnDeviceScope on_device;
    try {
      const at::Tensor r = at::conv3d(x, w, bias, 1, 1);
      EXPECT_TRUE(r.allclose(expected, 1e-4, 1e-4))
          << label << ": wrong result after failing allocation " << n;
    } catch (const c10::OutOfMemoryError&) {
      ++surfaced;
    }
    EXPECT_EQ(allocated(), base) << label << ": leak after failing allocation " << n;
  }
  simulated_device::clear_faults();
  EXPECT_GE(surfaced, 1) << label;
  std::cout << "[conv3d " << label << "] " << surfaced << " of " << clean.num_allocations
            << " failed allocations surfaced as OOM\n";
}

TEST(SimulatedDevice, Conv3dOomIsCatchableAtEveryAllocationAndLeaksNothing) {
  check_conv3d_oom("small (native kernel)", {1, 8, 6, 24, 24}, {16, 8, 3, 3, 3});
  // Large enough for LibTorch to pick MKLDNN, whose scratchpad goes through raw_allocate.
  check_conv3d_oom("large (mkldnn)", {1, 64, 16, 32, 32}, {32, 64, 3, 3, 3});
}

TEST(SimulatedDevice, PeakNeverExceedsTheBudgetUnderConcurrentAllocations) {
  const std::int64_t budget = 4 * kMiB;
  SimulatedDeviceScope sim(budget);
  const std::int64_t base = allocated();
  OnDeviceScope on_device;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      std::mt19937 rng(t);
      std::uniform_int_distribution<std::int64_t> size(1, 512 * 1024);
      std::vector<at::Tensor> live;
      for (int i = 0; i < 400; ++i) {
        try {
          live.push_back(at::empty({size(rng)}, at::kByte));
        } catch (const c10::OutOfMemoryError&) {
          live.clear();
        }
        if (live.size() > 12) live.erase(live.begin());
      }
    });
  }
  for (auto& th : threads) th.join();
  const SimulatedDeviceStats s = simulated_device::stats();
  EXPECT_EQ(s.allocated, base);
  EXPECT_LE(s.peak, budget);
  EXPECT_GT(s.num_ooms, 0);
  EXPECT_GT(s.peak, budget / 2);
}

TEST(SimulatedDevice, FaultInjectionFailsTheNthAllocation) {
  SimulatedDeviceScope sim(64 * kMiB);
  OnDeviceScope on_device;
  simulated_device::fail_nth_allocation(3);
  at::Tensor a = at::empty({10});
  at::Tensor b = at::empty({10});
  try {
    at::Tensor c = at::empty({10});
    FAIL() << "third allocation should fail";
  } catch (const c10::OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("injected"), std::string::npos);
  }
  at::Tensor d = at::empty({10});  // one-shot
  EXPECT_EQ(simulated_device::stats().num_ooms, 1);
  EXPECT_EQ(simulated_device::stats().num_allocations, 3);
}

TEST(SimulatedDevice, FaultInjectionFailsALargeAllocationInAPhase) {
  SimulatedDeviceScope sim(64 * kMiB);
  OnDeviceScope on_device;
  simulated_device::fail_next_allocation_larger_than(1000, "decode");
  {
    PhaseScope phase("encode");
    at::Tensor big = at::empty({4000}, at::kByte);  // other phase: fine
  }
  PhaseScope phase("decode");
  at::Tensor small = at::empty({500}, at::kByte);  // small: fine
  EXPECT_THROW(at::empty({4000}, at::kByte), c10::OutOfMemoryError);
  at::Tensor again = at::empty({4000}, at::kByte);  // one-shot
  EXPECT_EQ(simulated_device::stats().num_ooms, 1);

  simulated_device::fail_next_allocation_larger_than(100);  // any phase
  simulated_device::clear_faults();
  at::Tensor cleared = at::empty({4000}, at::kByte);
  EXPECT_EQ(simulated_device::stats().num_ooms, 1);
}

// ----------------------------------------------------------------------------------------------
// Probe, sizes

TEST(DeviceProbe, SimulatedProbeReadsTheAllocator) {
  SimulatedDeviceScope sim(8 * kMiB);
  auto probe = make_simulated_probe();
  EXPECT_EQ(probe->name(), "simulated");
  OnDeviceScope on_device;
  at::Tensor t = at::empty({kMiB}, at::kByte);
  const MemorySnapshot s = probe->snapshot();
  EXPECT_EQ(s.allocated, allocated());
  EXPECT_EQ(s.reserved, s.allocated);
  EXPECT_EQ(s.device_used, s.allocated);
  EXPECT_EQ(s.total, 8 * kMiB);
  EXPECT_EQ(s.budget, 8 * kMiB);
  EXPECT_EQ(free_bytes(s), 8 * kMiB - s.allocated);
  t = at::Tensor();
  probe->reset_peak();
  EXPECT_EQ(probe->snapshot().peak, allocated());
}

TEST(DeviceProbe, FreeBytesUsesTheTighterLimit) {
  MemorySnapshot s;
  s.allocated = 2 * kMiB;
  s.reserved = 3 * kMiB;  // 1 MiB cached, reusable
  s.device_used = 10 * kMiB;
  s.total = 12 * kMiB;
  s.budget = 12 * kMiB;
  EXPECT_EQ(free_bytes(s), 3 * kMiB);  // device: 2 free + 1 cached
  s.budget = 4 * kMiB;
  EXPECT_EQ(free_bytes(s), 2 * kMiB);  // budget: 4 - 2
  EXPECT_EQ(free_bytes(MemorySnapshot{}), -1);
}

TEST(DeviceProbe, CudaProbeOnlyWithCuda) {
  if (cuda_probe_available()) GTEST_SKIP() << "CUDA build: covered on a GPU machine";
  try {
    make_cuda_probe(0);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos);
  }
}

// memory/ uses the engine's one parse_size / format_size (framesmith/units.h, tested in
// foundation_test); these are the forms the OOM messages and budgets rely on.
TEST(Sizes, SharedUnitsCoverTheMemoryMessages) {
  EXPECT_EQ(parse_size("6GiB"), 6LL << 30);
  EXPECT_EQ(parse_size("512MiB"), 512LL << 20);
  EXPECT_EQ(parse_size("50331648"), 50331648);
  EXPECT_EQ(parse_size("20.00 MiB"), 20 * kMiB);
  EXPECT_EQ(parse_size("3GB"), 3000000000LL);
  EXPECT_THROW(parse_size("6 gigs"), Error);
  EXPECT_EQ(format_size(3328599654LL), "3.1 GiB");
  EXPECT_EQ(format_size(1536 * kMiB), "1.5 GiB");
  EXPECT_EQ(parse_size("6GiB"), parse_size(format_size(6LL << 30)));
  EXPECT_EQ(requested_bytes_from_message("Tried to allocate 20.00 MiB (GPU 0; 5.8 GiB total)"),
            20 * kMiB);
}

// ----------------------------------------------------------------------------------------------
// Allocator set-up

TEST(AllocatorSetup, ChoosesExpandableSegmentsUnlessTheUserSetTheVariable) {
  AllocatorChoice c = choose_allocator_conf(nullptr, nullptr, true);
  EXPECT_TRUE(c.expandable_segments);
  EXPECT_TRUE(c.changed_environment);
  EXPECT_FALSE(c.user_override);
  EXPECT_EQ(c.conf, "expandable_segments:True");

  c = choose_allocator_conf("", nullptr, true);  // empty counts as unset
  EXPECT_TRUE(c.changed_environment);

  c = choose_allocator_conf("garbage_collection_threshold:0.6", nullptr, true);
  EXPECT_TRUE(c.user_override);
  EXPECT_FALSE(c.changed_environment);
  EXPECT_FALSE(c.expandable_segments);
  EXPECT_NE(c.description.find("set by the user"), std::string::npos);

  // Only the device-generic name: the user's value, also under the CUDA name (which releases
  // before the generic one read).
  c = choose_allocator_conf(nullptr, "expandable_segments:True,max_split_size_mb:128", true);
  EXPECT_TRUE(c.user_override);
  EXPECT_TRUE(c.expandable_segments);
  EXPECT_TRUE(c.changed_environment);
  EXPECT_EQ(c.variable, "PYTORCH_ALLOC_CONF");
  EXPECT_EQ(c.conf, "expandable_segments:True,max_split_size_mb:128");

  c = choose_allocator_conf(nullptr, nullptr, false);
  EXPECT_FALSE(c.expandable_segments);
  EXPECT_FALSE(c.changed_environment);
  EXPECT_NE(c.description.find("no expandable segments"), std::string::npos);

  const Event e = framesmith::event_from_json_line(framesmith::to_json_line(allocator_event(c)));
  EXPECT_EQ(e.type, EventType::kAllocator);
  EXPECT_EQ(e.text("message"), c.description);
}

// Unsets an environment variable for one test and puts back what it was, also when an ASSERT
// ends the test early.
class UnsetForTheTest {
 public:
  explicit UnsetForTheTest(const char* name) : name_(name) {
    const char* v = std::getenv(name);
    had_ = v != nullptr;
    if (had_) value_ = v;
    ::unsetenv(name);
  }
  ~UnsetForTheTest() {
    if (had_)
      ::setenv(name_, value_.c_str(), 1);
    else
      ::unsetenv(name_);
  }
  UnsetForTheTest(const UnsetForTheTest&) = delete;
  UnsetForTheTest& operator=(const UnsetForTheTest&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string value_;
};

TEST(AllocatorSetup, ConfigureRespectsTheEnvironment) {
  const UnsetForTheTest cuda_conf("PYTORCH_CUDA_ALLOC_CONF");
  const UnsetForTheTest generic_conf("PYTORCH_ALLOC_CONF");

  AllocatorChoice c = configure_cuda_allocator();
  const char* now = std::getenv("PYTORCH_CUDA_ALLOC_CONF");
  if (FRAMESMITH_HAS_EXPANDABLE_SEGMENTS) {
    ASSERT_NE(now, nullptr);
    EXPECT_EQ(std::string(now), "expandable_segments:True");
  } else {
    EXPECT_EQ(now, nullptr);
    EXPECT_FALSE(c.expandable_segments);
  }
  ::setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:64", 1);
  c = configure_cuda_allocator();
  EXPECT_TRUE(c.user_override);
  EXPECT_EQ(std::string(std::getenv("PYTORCH_CUDA_ALLOC_CONF")), "max_split_size_mb:64");
  ::unsetenv("PYTORCH_CUDA_ALLOC_CONF");
  ::setenv("PYTORCH_ALLOC_CONF", "max_split_size_mb:32", 1);
  c = configure_cuda_allocator();
  EXPECT_TRUE(c.user_override);
  EXPECT_EQ(std::string(std::getenv("PYTORCH_CUDA_ALLOC_CONF")), "max_split_size_mb:32");
  // Once per process, whoever asks first (the CUDA probe, the governor's event).
  EXPECT_EQ(&cuda_allocator_choice(), &cuda_allocator_choice());
}

// The configuration reaches LibTorch itself where it has a settings API (2.x): what its
// allocator configuration reads back follows what was applied, both ways, and a user's own
// setting wins over the default. Without the API the environment is the only channel, which the
// test above covers; this one is then a visible skip.
TEST(AllocatorSetup, SettingsReachLibTorchThroughItsApi) {
  if (!FRAMESMITH_HAS_ALLOCATOR_SETTINGS_API)
    GTEST_SKIP() << "LibTorch " << framesmith::compat::torch_version_string()
                 << " has no allocator settings API (c10/core/AllocatorConfig.h): the "
                    "environment variable is its only configuration";
  const UnsetForTheTest cuda_conf("PYTORCH_CUDA_ALLOC_CONF");
  const UnsetForTheTest generic_conf("PYTORCH_ALLOC_CONF");

  ASSERT_TRUE(framesmith::compat::set_allocator_settings("expandable_segments:False"));
  EXPECT_EQ(framesmith::compat::allocator_expandable_segments(), 0);
  AllocatorChoice c = configure_cuda_allocator();  // the default: expandable segments
  EXPECT_EQ(c.applied_by, "api");
  EXPECT_EQ(c.read_back_expandable, 1);
  EXPECT_EQ(framesmith::compat::allocator_expandable_segments(), 1);
  EXPECT_NE(c.description.find("reads back expandable segments on"), std::string::npos);

  ::setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:False,max_split_size_mb:64", 1);
  c = configure_cuda_allocator();  // the user's choice, applied as written
  EXPECT_TRUE(c.user_override);
  EXPECT_EQ(c.read_back_expandable, 0);
  EXPECT_FALSE(c.expandable_segments);
  const Event e = framesmith::event_from_json_line(framesmith::to_json_line(allocator_event(c)));
  EXPECT_EQ(e.text("applied_by"), "api");
  EXPECT_EQ(e.number("read_back_expandable"), 0);

  // A setting LibTorch refuses is a clear error naming the variable, not a crash.
  ::setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:Sometimes", 1);
  try {
    configure_cuda_allocator();
    ADD_FAILURE() << "an invalid allocator setting was accepted";
  } catch (const framesmith::Error& err) {
    EXPECT_NE(std::string(err.what()).find("PYTORCH_CUDA_ALLOC_CONF"), std::string::npos)
        << err.what();
  }
}

// ----------------------------------------------------------------------------------------------
// Telemetry

// The sampler samples while a job allocates, tags each sample with the phase of the moment and
// stops cleanly. No wall-clock bounds (a loaded 2-core CI machine makes them flaky): each phase
// lasts until the sampler has delivered samples tagged with it (waited for, up to a minute), and
// stop() must return within a minute even with a period of an hour (it wakes the sampler; it
// does not wait out the period). The rate and its cost are measured by `bench telemetry`
// (samples, on/off medians, sampler_busy_fraction), not asserted here.
TEST(Telemetry, SamplesWithPhaseTagsAndStopsCleanly) {
  SimulatedDeviceScope sim(64 * kMiB);
  auto probe = make_simulated_probe();
  std::mutex mutex;
  std::vector<Event> events;
  TelemetryOptions options;
  options.period = std::chrono::milliseconds(50);
  options.jsonl_path = temp_path("memory.jsonl");
  MemoryTelemetry telemetry(
      *probe,
      [&](const Event& e) {
        std::lock_guard<std::mutex> lock(mutex);
        events.push_back(e);
      },
      options);
  auto tagged = [&](const std::string& phase) {
    std::lock_guard<std::mutex> lock(mutex);
    int n = 0;
    for (const Event& e : events) n += e.phase == phase && e.number("allocated") > 0;
    return n;
  };

  telemetry.start();
  EXPECT_TRUE(telemetry.running());
  // The "job": allocates on the device in two phases while the sampler runs, each phase until
  // three samples with device bytes were tagged with it.
  std::int64_t job_allocations = 0;
  for (const char* phase : {"vae encode", "section 1 step 3"}) {
    telemetry.set_phase(phase);
    OnDeviceScope on_device;
    std::vector<at::Tensor> live;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (tagged(phase) < 3 && std::chrono::steady_clock::now() < deadline) {
      live.push_back(at::empty({64 * 1024}, at::kByte));
      if (live.size() > 32) live.erase(live.begin());
      ++job_allocations;
    }
    EXPECT_GE(tagged(phase), 3) << "no samples tagged \"" << phase << "\" within a minute";
  }
  const std::int64_t before_stop = telemetry.samples();
  telemetry.stop();
  set_current_phase("");
  EXPECT_FALSE(telemetry.running());
  // stop() takes one last sample, and nothing samples after it.
  EXPECT_GE(telemetry.samples(), before_stop + 1);
  const std::int64_t after_stop = telemetry.samples();
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(telemetry.samples(), after_stop);
  std::cout << "[telemetry] " << telemetry.samples() << " samples; "
            << telemetry.busy_seconds() * 1e6 / double(telemetry.samples())
            << " us per sample (probe+event+callback+file); job made " << job_allocations
            << " device allocations\n";

  std::set<std::string> phases;
  bool saw_device_bytes = false;
  for (const Event& e : events) {
    EXPECT_EQ(e.type, EventType::kMemory);
    EXPECT_EQ(e.number("budget"), 64.0 * kMiB);
    EXPECT_EQ(e.number("total"), 64.0 * kMiB);
    saw_device_bytes |= e.number("allocated") > 0;
    phases.insert(e.phase);
    // The host is sampled alongside (this is Linux: /proc says).
    EXPECT_GT(e.number("host_rss_anon"), 0);
    EXPECT_GE(e.number("host_peak_rss"), e.number("host_rss"));
    EXPECT_GT(e.number("host_available"), 0);
  }
  EXPECT_TRUE(phases.count("vae encode"));
  EXPECT_TRUE(phases.count("section 1 step 3"));
  EXPECT_TRUE(saw_device_bytes);
  for (std::size_t i = 1; i < events.size(); ++i) EXPECT_GE(events[i].t_s, events[i - 1].t_s);

  std::ifstream file(options.jsonl_path);
  std::string line;
  std::size_t lines = 0;
  while (std::getline(file, line)) {
    const Event e = framesmith::event_from_json_line(line);
    EXPECT_EQ(e.type, EventType::kMemory);
    EXPECT_TRUE(e.numbers.count("device_used"));
    ++lines;
  }
  EXPECT_EQ(lines, events.size());

  telemetry.stop();  // idempotent
}

// stop() wakes a sampler that waits for its next period: with a period of an hour it returns at
// once, not in an hour. Checked against a deadline of a minute (fails cleanly, never hangs).
TEST(Telemetry, StopWakesTheSamplerInsteadOfWaitingOutThePeriod) {
  SimulatedDeviceScope sim(8 * kMiB);
  auto probe = make_simulated_probe();
  std::mutex mutex;
  std::condition_variable cv;
  int delivered = 0;
  auto telemetry = std::make_shared<MemoryTelemetry>(
      *probe,
      [&](const Event&) {
        std::lock_guard<std::mutex> lock(mutex);
        ++delivered;
        cv.notify_all();
      },
      TelemetryOptions{std::chrono::hours(1), "", std::chrono::steady_clock::now()});
  telemetry->start();
  {  // The first sample comes at start; then the sampler waits for the next period.
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return delivered >= 1; }));
  }
  auto stopped = std::async(std::launch::async, [telemetry] { telemetry->stop(); });
  if (stopped.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    // Leaked on purpose: destroying the future would wait out the hour.
    static_cast<void>(new std::future<void>(std::move(stopped)));
    FAIL() << "stop() did not wake the sampler within a minute";
  }
  stopped.get();
  EXPECT_FALSE(telemetry->running());
  EXPECT_EQ(telemetry->samples(), 2);  // the first one and the last one stop() takes
}

TEST(Telemetry, CallbackFailureSurfacesOnStop) {
  auto probe = make_simulated_probe();
  MemoryTelemetry telemetry(
      *probe, [](const Event&) { throw std::runtime_error("gui went away"); },
      TelemetryOptions{std::chrono::milliseconds(10), "", std::chrono::steady_clock::now()});
  telemetry.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_THROW(telemetry.stop(), std::runtime_error);
  EXPECT_EQ(telemetry.samples(), 0);
}

// ----------------------------------------------------------------------------------------------
// OOM ladder

// Device bytes a "chunk c" attempt of the test phase needs.
std::int64_t chunk_bytes(std::int64_t chunk) {
  return chunk * 96 * kKiB;
}

TEST(OomLadder, RetriesWithTheNextRungAndReports) {
  SimulatedDeviceScope sim(kMiB);
  const std::int64_t base = allocated();
  auto probe = make_simulated_probe();
  const std::vector<std::int64_t> chunks = {16, 4, 1};
  std::vector<Event> events;
  int cache_flushes = 0;
  OomLadderHooks hooks;
  hooks.probe = probe.get();
  hooks.empty_cache = [&] { ++cache_flushes; };
  hooks.now_s = [] { return 1.25; };
  std::vector<std::size_t> tried;
  const std::size_t used = run_with_oom_ladder(
      "decode chunk 3", {"chunk 16", "chunk 4", "chunk 1"},
      [&](std::size_t rung) {
        tried.push_back(rung);
        OnDeviceScope on_device;
        at::Tensor work = at::empty({chunk_bytes(chunks[rung])}, at::kByte);
        work.fill_(1);
      },
      [&](const Event& e) { events.push_back(e); }, hooks);
  EXPECT_EQ(used, 1u);
  EXPECT_EQ(tried, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(cache_flushes, 1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::kOomRecovered);
  EXPECT_EQ(events[0].phase, "decode chunk 3");
  EXPECT_EQ(events[0].text("action"),
            "chunk 16\xE2\x86\x92"
            "4");
  EXPECT_EQ(events[0].text("outcome"), "retry");
  EXPECT_EQ(events[0].number("requested"), static_cast<double>(chunk_bytes(16)));
  EXPECT_EQ(events[0].number("free"), static_cast<double>(kMiB - base));
  EXPECT_EQ(events[0].t_s, 1.25);
  EXPECT_EQ(events[1].text("outcome"), "ok");
  EXPECT_EQ(events[1].text("action"), "chunk 4");
  EXPECT_EQ(allocated(), base);  // nothing left behind
  const Event round_trip = framesmith::event_from_json_line(framesmith::to_json_line(events[0]));
  EXPECT_EQ(round_trip.text("action"), events[0].text("action"));
}

TEST(OomLadder, FailsWithAClearMessageOnTheLastRung) {
  SimulatedDeviceScope sim(64 * kKiB);
  const std::int64_t base = allocated();
  auto probe = make_simulated_probe();
  const std::vector<std::int64_t> chunks = {16, 4, 1};
  std::vector<Event> events;
  OomLadderHooks hooks;
  hooks.probe = probe.get();
  try {
    run_with_oom_ladder(
        "decode", {"chunk 16", "chunk 4", "chunk 1"},
        [&](std::size_t rung) {
          OnDeviceScope on_device;
          at::Tensor work = at::empty({chunk_bytes(chunks[rung])}, at::kByte);
        },
        [&](const Event& e) { events.push_back(e); }, hooks);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("phase \"decode\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"chunk 1\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("tried to allocate 96.0 KiB"), std::string::npos) << msg;
    // Free at the moment of the failure (from the allocator), not after it unwound.
    EXPECT_NE(msg.find("tried to allocate 96.0 KiB when 64.0 KiB were free"), std::string::npos)
        << msg;
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].text("outcome"), "retry");
  EXPECT_EQ(events[1].text("action"),
            "chunk 4\xE2\x86\x92"
            "1");
  EXPECT_EQ(events[2].text("outcome"), "failed");
  EXPECT_EQ(allocated(), base);
}

TEST(OomLadder, OtherErrorsPassThrough) {
  int calls = 0;
  EXPECT_THROW(run_with_oom_ladder(
                   "text", {"a", "b"},
                   [&](std::size_t) {
                     ++calls;
                     TORCH_CHECK(false, "shape mismatch in text encoder");
                   },
                   nullptr),
               c10::Error);
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(run_with_oom_ladder(
                   "text", {"a"}, [](std::size_t) { throw framesmith::Cancelled(); }, nullptr),
               framesmith::Cancelled);
  EXPECT_THROW(run_with_oom_ladder(
                   "text", {}, [](std::size_t) {}, nullptr),
               Error);
}

TEST(OomLadder, OldStyleCudaOomMessageIsRecognised) {
  std::vector<Event> events;
  const std::size_t used = run_with_oom_ladder(
      "section 1 step 1", {"full", "tiled"},
      [](std::size_t rung) {
        TORCH_CHECK(rung > 0,
                    "CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 6.00 GiB total "
                    "capacity; 5.10 GiB already allocated; 9.19 MiB free; 5.30 GiB reserved)");
      },
      [&](const Event& e) { events.push_back(e); });
  EXPECT_EQ(used, 1u);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].number("requested"), 20.0 * kMiB);
  EXPECT_EQ(events[0].text("action"), "full\xE2\x86\x92tiled");
  EXPECT_EQ(events[0].numbers.count("free"), 0u);  // no probe given
}

TEST(OomLadder, HostExhaustionRetriesTheSameRungOnceAfterReleasing) {
  std::vector<Event> events;
  std::vector<std::size_t> tried;
  int released = 0;
  OomLadderHooks hooks;
  hooks.release_host_memory = [&] { ++released; };
  const std::size_t used = run_with_oom_ladder(
      "text", {"on simulated", "on the CPU"},
      [&](std::size_t rung) {
        tried.push_back(rung);
        if (tried.size() == 1) throw std::bad_alloc();
      },
      [&](const Event& e) { events.push_back(e); }, hooks);
  EXPECT_EQ(used, 0u) << "a smaller device setting frees no RAM: the same rung again";
  EXPECT_EQ(tried, (std::vector<std::size_t>{0, 0}));
  EXPECT_EQ(released, 1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text("memory"), "host");
  EXPECT_EQ(events[0].text("outcome"), "retry");
  EXPECT_EQ(events[0].text("action"), "host memory released, on simulated again");
  EXPECT_EQ(events[1].text("memory"), "host");
  EXPECT_EQ(events[1].text("outcome"), "ok");
}

TEST(OomLadder, HostExhaustionTwiceFailsWithARamMessage) {
  std::vector<Event> events;
  std::vector<std::size_t> tried;
  OomLadderHooks hooks;
  hooks.release_host_memory = [] {};
  try {
    run_with_oom_ladder(
        "decode", {"chunk 4", "chunk 1"},
        [&](std::size_t rung) {
          tried.push_back(rung);
          TORCH_CHECK(false,
                      "DefaultCPUAllocator: not enough memory: you tried to allocate "
                      "123456789 bytes.");
        },
        [&](const Event& e) { events.push_back(e); }, hooks);
    FAIL() << "the ladder should have given up";
  } catch (const OutOfMemory& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("ran out of memory (RAM)"), std::string::npos) << what;
    EXPECT_NE(what.find("\"decode\""), std::string::npos) << what;
  }
  EXPECT_EQ(tried, (std::vector<std::size_t>{0, 0})) << "no device rung was given up for RAM";
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].text("outcome"), "failed");
  EXPECT_EQ(events[1].text("memory"), "host");
}

TEST(OomLadder, DeviceRecoveriesSayDevice) {
  std::vector<Event> events;
  run_with_oom_ladder(
      "decode", {"chunk 4", "chunk 1"},
      [&](std::size_t rung) {
        TORCH_CHECK(rung > 0, "CUDA out of memory. Tried to allocate 2 MiB");
      },
      [&](const Event& e) { events.push_back(e); });
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text("memory"), "device");
  EXPECT_EQ(events[1].text("memory"), "device");
}

TEST(SimulatedDevice, HostFaultIsHostExhaustion) {
  SimulatedDeviceScope sim(kMiB);
  simulated_device::fail_next_host_allocation_larger_than(4096);
  at::Tensor device_side = at::empty({8192}, at::kByte);  // device allocations are not host faults
  HostScope host;
  at::Tensor small = at::empty({1024}, at::kByte);
  try {
    at::Tensor big = at::empty({8192}, at::kByte);
    FAIL() << "the host fault should have fired";
  } catch (const std::exception& e) {
    MemoryKind kind = MemoryKind::kDevice;
    std::string msg;
    ASSERT_TRUE(is_out_of_memory(e, &msg, &kind)) << e.what();
    EXPECT_EQ(kind, MemoryKind::kHost) << msg;
  }
  at::Tensor again = at::empty({8192}, at::kByte);  // a fault fires once
}

TEST(HostMemory, ParsesProcAndRefusesWhatDoesNotFit) {
  const HostMemory h = parse_host_memory(
      "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   2000000 kB\n",
      "Name:\tx\nVmHWM:\t  300 kB\nVmRSS:\t  200 kB\nRssAnon:\t  150 kB\n");
  EXPECT_EQ(h.total, 24000000LL * 1024);
  EXPECT_EQ(h.available, 2000000LL * 1024);
  EXPECT_EQ(h.peak_rss, 300 * 1024);
  EXPECT_EQ(h.rss, 200 * 1024);
  EXPECT_EQ(h.rss_anon, 150 * 1024);
  EXPECT_EQ(parse_host_memory("", "").available, -1);
  const HostMemory live = read_host_memory();
  EXPECT_GT(live.total, 0);
  EXPECT_GT(live.available, 0);
  EXPECT_GT(live.rss_anon, 0);
  EXPECT_GE(live.peak_rss, live.rss);

  const HostMemoryReader reader = [&] { return h; };
  EXPECT_NO_THROW(require_host_memory(kMiB, "a small thing", reader));
  try {
    require_host_memory(32LL << 30, "the LLaMA on the CPU", reader);
    FAIL() << "32 GiB do not fit in 1.9 GiB";
  } catch (const HostMemoryExhausted& e) {
    EXPECT_EQ(e.requested(), 32LL << 30);
    EXPECT_EQ(e.available(), h.available);
    EXPECT_NE(std::string(e.what()).find("the LLaMA on the CPU needs about 32"), std::string::npos)
        << e.what();
    MemoryKind kind = MemoryKind::kDevice;
    EXPECT_TRUE(is_out_of_memory(e, nullptr, &kind));
    EXPECT_EQ(kind, MemoryKind::kHost);
  }
  // A host that does not say: nothing to refuse on.
  EXPECT_NO_THROW(require_host_memory(1LL << 50, "x", [] { return HostMemory{}; }));
}

TEST(OomLadder, MessageHelpers) {
  std::string msg;
  EXPECT_TRUE(is_out_of_memory(std::bad_alloc(), &msg));
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("out of memory")));  // not a LibTorch error
  EXPECT_EQ(requested_bytes_from_message("Tried to allocate 512 bytes (GPU 0)"), 512);
  EXPECT_EQ(requested_bytes_from_message("Tried to allocate 2.00 GiB (GPU 0; 1 GiB free)"),
            2LL << 30);
  EXPECT_EQ(requested_bytes_from_message("CUBLAS_STATUS_ALLOC_FAILED"), -1);
  EXPECT_EQ(rung_change_text("tile 64x64", "tile 32x32"),
            "tile 64x64\xE2\x86\x92"
            "32x32");
  EXPECT_EQ(rung_change_text("fp16 full", "offload blocks"), "fp16 full\xE2\x86\x92offload blocks");
}
}  // namespace
