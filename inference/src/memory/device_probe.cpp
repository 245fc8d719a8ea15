#include "memory/device_probe.h"

#include <algorithm>
#include <limits>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "memory/allocator_setup.h"
#include "memory/simulated_device.h"

#if FRAMESMITH_HAS_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace framesmith::memory {

namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

class SimulatedProbe final : public MemoryProbe {
 public:
  std::string name() const override { return "simulated"; }
  MemorySnapshot snapshot() const override {
    const SimulatedDeviceStats st = simulated_device::stats();
    MemorySnapshot s;
    s.allocated = s.reserved = s.active = s.device_used = st.allocated;
    s.peak = st.peak;
    s.total = s.budget = st.budget;
    s.num_ooms = st.num_ooms;
    return s;
  }
  void empty_cache() override { simulated_device::count_cache_flush(); }  // (nothing cached)
  void reset_peak() override { simulated_device::reset_peak(); }
};

#if FRAMESMITH_HAS_CUDA
class CudaProbe final : public MemoryProbe {
 public:
  CudaProbe(int device, std::int64_t budget) : device_(device), budget_(budget) {
    cuda_allocator_choice();          // the allocator's variable, before CUDA starts
    compat::cuda_lazy_init(device_);  // before the first allocator call (see torch_compat.h)
  }
  std::string name() const override { return "cuda:" + std::to_string(device_); }

  MemorySnapshot snapshot() const override {
    const compat::CudaAllocatorStats st = compat::cuda_allocator_stats(device_);
    MemorySnapshot s;
    s.allocated = st.allocated;
    s.reserved = st.reserved;
    s.active = st.active;
    s.peak = st.peak_allocated;
    s.num_ooms = st.num_ooms;
    s.num_retries = st.num_alloc_retries;
    std::size_t free = 0, total = 0;
    {
      // The sampler runs on its own thread: make this device current there.
      c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
      if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the error; report the device as unknown
        free = total = 0;
      }
    }
    s.total = static_cast<std::int64_t>(total);
    s.device_used = static_cast<std::int64_t>(total - free);
    s.budget = budget_ > 0 && (s.total == 0 || budget_ < s.total) ? budget_ : s.total;
    return s;
  }
  void empty_cache() override { compat::cuda_empty_cache(); }
  void reset_peak() override { compat::cuda_reset_peak_stats(device_); }

 private:
  int device_;
  std::int64_t budget_;
};
#endif

}  // namespace

std::int64_t free_bytes(const MemorySnapshot& s) {
  if (s.total <= 0 && s.budget <= 0) return -1;  // unknown
  const std::int64_t cached = std::max<std::int64_t>(0, s.reserved - s.allocated);
  const std::int64_t device_free = s.total > 0 ? s.total - s.device_used + cached : kMax;
  const std::int64_t budget_left = s.budget > 0 ? s.budget - s.allocated : kMax;
  return std::max<std::int64_t>(0, std::min(device_free, budget_left));
}

std::unique_ptr<MemoryProbe> make_simulated_probe() {
  return std::make_unique<SimulatedProbe>();
}

bool cuda_probe_available() {
  return FRAMESMITH_HAS_CUDA != 0;
}

std::unique_ptr<MemoryProbe> make_cuda_probe(int device_index, std::int64_t budget_bytes) {
#if FRAMESMITH_HAS_CUDA
  if (device_index < 0) throw Error("bad CUDA device index " + std::to_string(device_index));
  return std::make_unique<CudaProbe>(device_index, budget_bytes);
#else
  throw Error("this LibTorch (" + std::string(compat::torch_version_string()) +
              ") was built without CUDA: no CUDA memory probe for device " +
              std::to_string(device_index));
#endif
}

}  // namespace framesmith::memory
