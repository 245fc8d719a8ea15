// How a stored weight becomes the tensor a forward computes with. Weights loaded "at use" stay
// memory-mapped in the checkpoint's dtype on the host; each is converted (float8: decoded) only
// when the module that owns it is placed on the device, or right before it runs on the plain CPU.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "io/float8.h"

namespace framesmith {

struct WeightForm {
  at::ScalarType dtype = at::kFloat;           // the compute dtype
  std::optional<io::Float8Format> raw_float8;  // set: the stored tensor holds float8 codes (kByte)

  // Whether `stored` already is what a forward computes with (no conversion needed).
  bool matches(const at::Tensor& stored) const {
    return !raw_float8 && stored.scalar_type() == dtype;
  }
};

// A new tensor: `stored` in its compute form, on stored's device, allocated in the caller's
// allocation context (inside a simulated-device scope it counts against the budget). Always a
// copy, also when the dtype already matches, so that a device placement is a real allocation.
at::Tensor to_compute(const at::Tensor& stored, const WeightForm& form);

}  // namespace framesmith
