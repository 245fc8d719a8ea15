// Reading the device's memory state: one plain snapshot struct, and probes that fill it from the
// simulated device (tests, CPU) or from CUDA's caching allocator (only in CUDA builds of LibTorch).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace framesmith::memory {

// All sizes in bytes.
struct MemorySnapshot {
  std::int64_t allocated = 0;    // in live tensors on the device
  std::int64_t reserved = 0;     // held by the caching allocator (>= allocated)
  std::int64_t active = 0;       // in blocks in use (allocated plus rounding and pending frees)
  std::int64_t peak = 0;         // highest `allocated` since the last reset_peak
  std::int64_t device_used = 0;  // whole device, every process and the CUDA context included
  std::int64_t total = 0;        // device capacity
  std::int64_t budget = 0;       // what Framesmith may use (<= total)
  std::int64_t num_ooms = 0;     // OOMs the allocator reported
  std::int64_t num_retries = 0;  // allocations that succeeded only after the cache was flushed
};

// What one more allocation could still get: the smaller of the device's free memory and what is
// left of the budget (cached-but-unused blocks count as free, the allocator reuses them).
std::int64_t free_bytes(const MemorySnapshot& s);

class MemoryProbe {
 public:
  virtual ~MemoryProbe() = default;
  virtual std::string name() const = 0;  // "simulated", "cuda:0"
  // Cheap and thread-safe: the telemetry sampler calls it >= 10 times a second.
  virtual MemorySnapshot snapshot() const = 0;
  // Returns cached, unused blocks to the device (no-op where there is no cache).
  virtual void empty_cache() = 0;
  virtual void reset_peak() = 0;
};

// Reads the simulated device (memory/simulated_device.h): reserved = active = device_used =
// allocated, total = budget.
std::unique_ptr<MemoryProbe> make_simulated_probe();

// True if this build of LibTorch has CUDA (then make_cuda_probe works).
bool cuda_probe_available();
// Reads the CUDA caching allocator's stats and cudaMemGetInfo for one device. budget_bytes <= 0
// means the whole device. Throws Error in builds without CUDA.
std::unique_ptr<MemoryProbe> make_cuda_probe(int device_index, std::int64_t budget_bytes = 0);

}  // namespace framesmith::memory
