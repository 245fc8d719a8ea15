// Every LibTorch version difference the engine cares about lives here, nowhere else.
// Supported: Debian's LibTorch 1.13 (CPU) and LibTorch 2.x (CPU or CUDA, from a PyTorch install).
#pragma once
#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <torch/csrc/api/include/torch/version.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#define FRAMESMITH_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||             \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// Fused scaled-dot-product attention (at::scaled_dot_product_attention) arrived in 2.0.
#define FRAMESMITH_HAS_SDPA FRAMESMITH_TORCH_AT_LEAST(2, 0)
// On the CPU, SDPA picks a fused (flash) kernel that never holds the (Sq x Sk) scores from 2.3
// on, when that kernel learned attention masks; before, a masked call fell back to the math
// kernel, which does hold them. The planner's attention estimate follows this.
#define FRAMESMITH_HAS_FUSED_CPU_SDPA FRAMESMITH_TORCH_AT_LEAST(2, 3)
// float8 dtypes (Float8_e4m3fn, Float8_e5m2) arrived in 2.1.
#define FRAMESMITH_HAS_FLOAT8 FRAMESMITH_TORCH_AT_LEAST(2, 1)
// The CUDA caching allocator learned expandable segments in 2.1.
#define FRAMESMITH_HAS_EXPANDABLE_SEGMENTS FRAMESMITH_TORCH_AT_LEAST(2, 1)

// LibTorch built with CUDA (and the CUDA toolkit headers on the include path). Every LibTorch,
// CPU-only ones too (Debian's 1.13, the CPU wheels), installs the c10/cuda headers; only a CUDA
// build generates and installs c10/cuda/impl/cuda_cmake_macros.h, which c10/cuda/CUDAMacros.h
// includes: without it no c10/cuda header compiles. (ATen defines no AT_CUDA_ENABLED macro.)
#if !defined(FRAMESMITH_DISABLE_CUDA) && __has_include(<c10/cuda/impl/cuda_cmake_macros.h>) && \
    __has_include(<c10/cuda/CUDACachingAllocator.h>)
#if __has_include(<cuda_runtime_api.h>)
#define FRAMESMITH_HAS_CUDA 1
#else
#warning "LibTorch has CUDA but cuda_runtime_api.h is not on the include path: no CUDA paths"
#define FRAMESMITH_HAS_CUDA 0
#endif
#else
#define FRAMESMITH_HAS_CUDA 0
#endif
// The caching allocators' settings (PYTORCH_ALLOC_CONF's grammar) through an API, not only the
// environment: c10/core/AllocatorConfig.h, device-generic and part of libc10 itself, so it works
// (and is tested) in a process without a GPU. Older releases read the environment variable only,
// once, at CUDA's first allocation.
#if __has_include(<c10/core/AllocatorConfig.h>)
#include <c10/core/AllocatorConfig.h>
#define FRAMESMITH_HAS_ALLOCATOR_SETTINGS_API 1
#else
#define FRAMESMITH_HAS_ALLOCATOR_SETTINGS_API 0
#endif

#if defined(FRAMESMITH_REQUIRE_CUDA) && !FRAMESMITH_HAS_CUDA
#error "FRAMESMITH_REQUIRE_CUDA is set but the CUDA paths would compile out (see above)"
#endif
#if FRAMESMITH_HAS_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace framesmith::compat {

// Two c10::Allocator differences: copy_data became pure virtual in 2.3, and `allocate` lost its
// `const` in 2.x (2.3/2.4). Rather than guess the exact release, the const-ness is read from the
// declaration itself. Allocators in memory/ derive from AllocatorBase and implement
// `allocate_bytes`, so neither difference leaks out of this header.
namespace detail {
template <typename Base>
constexpr bool kConstAllocate =
    std::is_same<decltype(&Base::allocate), c10::DataPtr (Base::*)(std::size_t) const>::value;

template <typename Base, bool kConst = kConstAllocate<Base>>
class AllocateShim;
template <typename Base>
class AllocateShim<Base, true> : public Base {
 public:
  c10::DataPtr allocate(std::size_t n) const override { return allocate_bytes(n); }

 protected:
  virtual c10::DataPtr allocate_bytes(std::size_t n) const = 0;
};
template <typename Base>
class AllocateShim<Base, false> : public Base {
 public:
  c10::DataPtr allocate(std::size_t n) override { return allocate_bytes(n); }

 protected:
  virtual c10::DataPtr allocate_bytes(std::size_t n) const = 0;
};
}  // namespace detail

class AllocatorBase : public detail::AllocateShim<c10::Allocator> {
 public:
#if FRAMESMITH_TORCH_AT_LEAST(2, 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif
};

#if FRAMESMITH_HAS_CUDA
// The caching allocator's counters. Across versions: DeviceStats moved to
// c10::CachingDeviceAllocator (2.5+, re-exported), the device argument went from int to
// DeviceIndex (2.3), emptyCache gained defaulted arguments (2.8). `auto`, a DeviceIndex argument
// (converts to int) and index 0 (StatType::AGGREGATE in every version) cover all of them.
struct CudaAllocatorStats {
  std::int64_t allocated = 0, reserved = 0, active = 0, peak_allocated = 0;
  std::int64_t num_ooms = 0, num_alloc_retries = 0;
};
inline CudaAllocatorStats cuda_allocator_stats(int device) {
  const auto s =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  constexpr std::size_t kAggregate = 0;
  CudaAllocatorStats r;
  r.allocated = s.allocated_bytes[kAggregate].current;
  r.reserved = s.reserved_bytes[kAggregate].current;
  r.active = s.active_bytes[kAggregate].current;
  r.peak_allocated = s.allocated_bytes[kAggregate].peak;
  r.num_ooms = s.num_ooms;
  r.num_alloc_retries = s.num_alloc_retries;
  return r;
}
inline void cuda_empty_cache() {
  c10::cuda::CUDACachingAllocator::emptyCache();
}
inline void cuda_reset_peak_stats(int device) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
}
// The device argument went from int to DeviceIndex in 2.3, as above.
inline void cuda_set_memory_fraction(double fraction, int device) {
  c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction,
                                                     static_cast<c10::DeviceIndex>(device));
}
// The caching allocator has no per-device state before CUDA's lazy initialisation, which LibTorch
// runs at the first CUDA tensor: until then its stats, peak-reset and memory-fraction calls throw
// "Invalid device argument 0: did you call init?". The call that runs it changed
// (Context::lazyInitCUDA, later lazyInitDevice(kCUDA)); allocating an empty tensor runs it in
// every version, and checks the device index on the way.
inline void cuda_lazy_init(int device) {
  (void)at::empty({0}, at::TensorOptions().dtype(at::kByte).device(
                           at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device))));
}
#endif

// Applies `conf` ("key:value,key:value") as the allocator's configuration. False when this
// LibTorch has no API for it; throws c10::Error on a setting LibTorch does not accept.
inline bool set_allocator_settings(const std::string& conf) {
#if FRAMESMITH_HAS_ALLOCATOR_SETTINGS_API
  c10::CachingAllocator::setAllocatorSettings(conf);
  return true;
#else
  (void)conf;
  return false;
#endif
}

// What the allocator configuration in effect says about expandable segments: 1 on, 0 off, -1
// when this LibTorch cannot tell (no settings API). The device-generic flag, not the CUDA
// allocator's own accessor: that one is inline and tests a macro only LibTorch's own build
// defines (PYTORCH_C10_DRIVER_API_SUPPORTED), so compiled here it would always say "off".
inline int allocator_expandable_segments() {
#if FRAMESMITH_HAS_ALLOCATOR_SETTINGS_API
  return c10::CachingAllocator::AcceleratorAllocatorConfig::use_expandable_segments() ? 1 : 0;
#else
  return -1;
#endif
}

inline const char* torch_version_string() {
  return TORCH_VERSION;
}

}  // namespace framesmith::compat
