// One packed-transformer forward with its weights placed as the memory governor places them on
// the simulated device: the first `resident` modules at once, the others streamed per module.
#pragma once
#include <ATen/ATen.h>

#include "memory/residency.h"
#include "models/transformer_packed.h"

namespace framesmith::test_support {

inline at::Tensor forward_on_simulated_device(PackedTransformer& model, const TransformerInputs& in,
                                              int resident) {
  memory::ComputeDevice device;
  device.simulated = true;
  memory::TransformerResidency residency(model, device);
  residency.modules().set_resident_count(resident);
  at::Tensor out;
  {
    memory::DeviceWork work(device);
    out = model.forward(in);
  }
  residency.end_forward();
  return device.to_host(out);
}

}  // namespace framesmith::test_support
