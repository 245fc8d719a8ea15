// A simulated accelerator for testing the memory governor without a GPU.
//
// While a SimulatedDeviceScope is alive, LibTorch's CPU allocator is replaced by a budget-counting
// one. Allocations made while an OnDeviceScope is active (on any thread: intra-op worker threads of
// an op started on the device count too, as they would on a GPU) are "device" allocations: they
// count against the budget, and one that would pass it throws c10::OutOfMemoryError with a
// CUDA-like message, exactly what the OOM ladder catches on a real GPU. Everything else (host
// weights, inputs) is allocated as usual and not counted. Each allocation carries a 64-byte header
// in front of its data that records its size and whether it was a device allocation, so a free is
// attributed correctly whenever and wherever it happens (also after the scope ended).
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

// Allocations made while at least one OnDeviceScope is alive (in any thread) are device
// allocations.
class OnDeviceScope {
 public:
  OnDeviceScope();
  ~OnDeviceScope();
  OnDeviceScope(const OnDeviceScope&) = delete;
  OnDeviceScope& operator=(const OnDeviceScope&) = delete;
};

// Inside an OnDeviceScope: allocations made by this thread go to the host again (e.g. to build a
// host-resident copy while the job is on the device). Thread-local; nestable.
class HostScope {
 public:
  HostScope();
  ~HostScope();
  HostScope(const HostScope&) = delete;
  HostScope& operator=(const HostScope&) = delete;
};

// The priority the allocator is installed with: above LibTorch's default CPU allocator (0).
constexpr std::uint8_t kSimulatedAllocatorPriority = 64;
// Bytes in front of every allocation; equal to c10's CPU alignment, so data stays 64-byte aligned.
constexpr std::size_t kSimulatedHeaderBytes = 64;

}  // namespace framesmith::memory
