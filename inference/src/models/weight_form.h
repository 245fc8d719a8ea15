// How a stored weight becomes the tensor a forward computes with. Weights loaded "at use" stay
// memory-mapped in the checkpoint's dtype on the host; each is converted (float8: decoded) only
// when the module that owns it is placed on the device, or right before it runs on the plain CPU.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <vector>

#include "io/float8.h"

namespace framesmith {

// One LoRA's low-rank change of a weight (models/lora.h): W + scale · up · down.
struct LoraFactor {
  at::Tensor down;  // [rank, in], float32, host
  at::Tensor up;    // [out, rank], float32, host: rows of the target weight
  double scale = 1.0;
};

struct WeightForm {
  at::ScalarType dtype = at::kFloat;           // the compute dtype
  std::optional<io::Float8Format> raw_float8;  // set: the stored tensor holds float8 codes (kByte)
  // Set: LoRA factors added to the converted weight (the stored tensor stays the base model's).
  std::shared_ptr<const std::vector<LoraFactor>> lora;

  // Whether `stored` already is what a forward computes with (no conversion needed).
  bool matches(const at::Tensor& stored) const {
    return !raw_float8 && !lora && stored.scalar_type() == dtype;
  }
};

// A new tensor: `stored` in its compute form, on stored's device, allocated in the caller's
// allocation context (inside a simulated-device scope it counts against the budget). Always a
// copy, also when the dtype already matches, so that a device placement is a real allocation.
// With LoRA factors, they are added to the copy (apply_lora).
at::Tensor to_compute(const at::Tensor& stored, const WeightForm& form);

// Adds `factors` to `weight` in place, in its dtype and on its device. The products are formed in
// float32 in row slices of bounded size, so a 3072 × 12288 linear never needs a float32 copy.
void apply_lora(at::Tensor& weight, const std::vector<LoraFactor>& factors);

}  // namespace framesmith
