// A simulated accelerator for testing the memory governor without a GPU.
//
// While a SimulatedDeviceScope is alive, LibTorch's CPU allocator is replaced by a budget-counting
// one that COUNTS BY DEFAULT: every allocation, on any thread, is a device allocation (it counts
// against the budget, and one that would pass it throws c10::OutOfMemoryError with a CUDA-like
// message, exactly what the OOM ladder catches on a real GPU), unless the allocating thread is
// inside a HostScope: only what is explicitly host-side (host copies of weights, staging buffers,
// the sampler's host state, decoded frames) is left out. A forgotten HostScope therefore shows up
// as an over-count (a test that compares the peak with the planner's estimate fails, or the budget
// refuses), never as a silent under-count. Intra-op worker threads carry no scope, so what they
// allocate counts too, as it would on a GPU. An OnDeviceScope inside a HostScope makes its thread's
// allocations device ones again (a device copy made from host-side code); the innermost scope of
// the thread wins. Device allocations made with no scope at all on their thread are also counted
// separately (`unmarked`), so a test or a report can say how much of the peak nobody marked.
// Each allocation carries a 64-byte header in front of its data that records its size and where
// it was counted, so a free is attributed correctly whenever and wherever it happens (also after
// the scope ended).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace framesmith::memory {

struct SimulatedDeviceStats {
  std::int64_t allocated = 0;        // bytes in live device allocations
  std::int64_t peak = 0;             // highest `allocated` since the last reset_peak
  std::int64_t budget = 0;           // the simulated device's capacity
  std::int64_t num_ooms = 0;         // OutOfMemoryErrors thrown (injected faults included)
  std::int64_t num_allocations = 0;  // successful device allocations
  std::int64_t host_allocated = 0;   // bytes in live non-device allocations made by this allocator
  std::int64_t num_cache_flushes = 0;  // empty_cache calls through the simulated probe
  // Of `allocated`: bytes allocated on a thread with no HostScope or OnDeviceScope (counted on
  // the device by default), and their highest value since the last reset_peak.
  std::int64_t unmarked = 0;
  std::int64_t unmarked_peak = 0;
};

// Process-wide state of the simulated device. Every function is thread-safe; the counters are
// atomics, so reading them (telemetry) never blocks an allocation.
namespace simulated_device {

bool installed();
SimulatedDeviceStats stats();
// Changes the capacity; allocations already made stay (allocated may then exceed the budget).
void set_budget(std::int64_t bytes);
void reset_peak();  // peak := allocated
// Zeroes num_ooms, num_allocations and num_cache_flushes and resets the peak.
void reset_counters();
// The simulated probe's empty_cache (nothing is cached: frees go straight back) is only counted,
// so tests can check where a job empties the cache.
void count_cache_flush();

// Fault injection (tests). Each fault fires once, counts as an OOM and throws OutOfMemoryError.
// The n-th device allocation from now fails (n = 1: the next one).
void fail_nth_allocation(std::int64_t n);
// The next device allocation of more than `bytes` fails, if the current phase (memory/phase.h) is
// `phase`; an empty phase matches any.
void fail_next_allocation_larger_than(std::int64_t bytes, const std::string& phase = "");
// The next host allocation (one made inside a HostScope) of more than `bytes` fails as LibTorch's
// CPU allocator fails when RAM runs out ("DefaultCPUAllocator: not enough memory"): host
// exhaustion, which the OOM ladder answers with its host rung.
void fail_next_host_allocation_larger_than(std::int64_t bytes);
void clear_faults();

// Copies a host tensor onto the simulated device (a clone made inside an OnDeviceScope). On the
// simulated device `tensor.to(device)` is a no-op, so code that moves weights to the device in
// simulation must copy explicitly to have them counted.
at::Tensor copy_to_device(const at::Tensor& host);

}  // namespace simulated_device

// Installs the simulated device's allocator as LibTorch's CPU allocator, with `budget_bytes` of
// capacity, and restores the previous allocator when it ends. Not nestable (throws Error);
// installing an allocator is process-wide, so tests must hold one only for their own duration.
class SimulatedDeviceScope {
 public:
  explicit SimulatedDeviceScope(std::int64_t budget_bytes);
  ~SimulatedDeviceScope();
  SimulatedDeviceScope(const SimulatedDeviceScope&) = delete;
  SimulatedDeviceScope& operator=(const SimulatedDeviceScope&) = delete;

 private:
  void* previous_ = nullptr;  // the c10::Allocator that was installed before
};

// Where this thread's allocations are counted while the simulated device is installed.
enum class Placement : std::uint8_t {
  kUnmarked,  // no scope: counted on the device (count by default)
  kDevice,    // an OnDeviceScope: counted on the device
  kHost,      // a HostScope: not counted
};
Placement current_placement();  // of the calling thread

// Allocations made by this thread are device allocations (also inside a HostScope: a device copy
// made from host-side code). Thread-local; nestable; the innermost scope wins.
class OnDeviceScope {
 public:
  OnDeviceScope();
  ~OnDeviceScope();
  OnDeviceScope(const OnDeviceScope&) = delete;
  OnDeviceScope& operator=(const OnDeviceScope&) = delete;

 private:
  Placement previous_;
};

// Allocations made by this thread are host allocations, outside the budget: the explicit mark of
// host-side data. Thread-local; nestable; the innermost scope wins. Harmless without the
// simulated device.
class HostScope {
 public:
  HostScope();
  ~HostScope();
  HostScope(const HostScope&) = delete;
  HostScope& operator=(const HostScope&) = delete;

 private:
  Placement previous_;
};

// The priority the allocator is installed with: above LibTorch's default CPU allocator (0).
constexpr std::uint8_t kSimulatedAllocatorPriority = 64;
// Bytes in front of every allocation; equal to c10's CPU alignment, so data stays 64-byte aligned.
constexpr std::size_t kSimulatedHeaderBytes = 64;

}  // namespace framesmith::memory
