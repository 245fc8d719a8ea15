// Every LibTorch version difference the engine cares about lives here, nowhere else.
// Supported: Debian's LibTorch 1.13 (CPU) and LibTorch 2.x (CPU or CUDA, from a PyTorch install).
#pragma once
#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <torch/csrc/api/include/torch/version.h>

#define FRAMESMITH_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||             \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// Fused scaled-dot-product attention (at::scaled_dot_product_attention) arrived in 2.0.
#define FRAMESMITH_HAS_SDPA FRAMESMITH_TORCH_AT_LEAST(2, 0)
// float8 dtypes (Float8_e4m3fn, Float8_e5m2) arrived in 2.1.
#define FRAMESMITH_HAS_FLOAT8 FRAMESMITH_TORCH_AT_LEAST(2, 1)
// The CUDA caching allocator learned expandable segments in 2.1.
#define FRAMESMITH_HAS_EXPANDABLE_SEGMENTS FRAMESMITH_TORCH_AT_LEAST(2, 1)

namespace framesmith::compat {

// c10::Allocator::allocate became non-const-qualified-compatible in 2.3 (it is still `const` there,
// but copy_data became pure virtual in 2.3). Allocators in memory/ derive from this shim so the
// difference stays here.
class AllocatorBase : public c10::Allocator {
 public:
#if FRAMESMITH_TORCH_AT_LEAST(2, 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif
};

inline const char* torch_version_string() { return TORCH_VERSION; }

}  // namespace framesmith::compat
