// UniPC for flow matching, variant bh1 (FramePack's diffusers_helper/k_diffusion/uni_pc_fm.py):
// a predictor-corrector multistep sampler over x0 predictions, order min(3, steps - 1).
//
// The sampler keeps its whole state in a plain struct of CPU float32 tensors and advances it
// with a pure function: a step whose model call throws (out of memory, cancelled) leaves the
// state untouched, so a memory governor can free memory and run the same step again. Only the
// model function touches the device.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

namespace framesmith::sampling {

// The flow (velocity) prediction for sample `x` at noise level `sigma`. `x` is CPU float32
// (B, C, T, H, W); `sigma` is a CPU float32 tensor of shape (B,) (FramePack's `vec_t`). May
// return any dtype/device; the sampler brings it back to CPU float32.
using FlowModel = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& sigma)>;

// Called after each step with the step index (0-based), the current sample and the latest x0
// prediction ("denoised"), both CPU float32, as FramePack's callback dict {'i', 'x', 'denoised'}.
using StepCallback = std::function<void(int step, const at::Tensor& x, const at::Tensor& denoised)>;

enum class UniPCVariant { kBh1 = 1, kBh2 };

struct UniPCOptions {
  UniPCVariant variant = UniPCVariant::kBh1;
  // The dtype the model sees `x` in. FramePack's fm_wrapper computes x0 = x - pred * sigma from
  // x after the cast to the transformer dtype, so bfloat16 sampling rounds x there too.
  at::ScalarType model_input_dtype = at::kFloat;
};

// Everything the sampler carries between steps.
struct UniPCState {
  int next_step = 0;                   // index into sigmas of the next model evaluation
  at::Tensor x;                        // current sample, CPU float32
  std::vector<at::Tensor> model_prev;  // recent x0 predictions, oldest first (at most `order`)
  std::vector<at::Tensor> t_prev;      // their sigmas, (B,) CPU float32, oldest first
};

class UniPCSampler {
 public:
  // `sigmas`: the steps + 1 noise levels, decreasing to 0 (flux_sigmas()).
  explicit UniPCSampler(at::Tensor sigmas, UniPCOptions options = {});

  int num_steps() const { return static_cast<int>(sigmas_.size(0)) - 1; }
  int order() const { return order_; }
  const at::Tensor& sigmas() const { return sigmas_; }

  // The state before step 0 for initial noise `noise` (B, C, T, H, W).
  UniPCState start(const at::Tensor& noise) const;
  bool finished(const UniPCState& state) const { return state.next_step >= num_steps(); }
  // Runs step `state.next_step` (one model evaluation) and returns the following state. `state`
  // is not modified, so the call can be repeated after a failure.
  UniPCState step(const UniPCState& state, const FlowModel& model) const;
  // The sampler's result: the last x0 prediction (what FramePack returns), CPU float32.
  static at::Tensor result(const UniPCState& state);

 private:
  at::Tensor denoise(const FlowModel& model, const at::Tensor& x, const at::Tensor& t) const;
  // One UniPC predictor-corrector update of `order` from the history to noise level `t`;
  // returns {x_t, model_t}.
  std::pair<at::Tensor, at::Tensor> update(const UniPCState& state, const at::Tensor& t, int order,
                                           const FlowModel& model) const;

  at::Tensor sigmas_;  // CPU float32, steps + 1
  UniPCOptions options_;
  int order_ = 0;
};

// FramePack's sample_unipc: runs every step, calling `callback` after each and checking `cancel`
// before each (throws framesmith::Cancelled when set). Returns the final x0 prediction.
at::Tensor sample_unipc(const FlowModel& model, const at::Tensor& noise, const at::Tensor& sigmas,
                        const StepCallback& callback = nullptr,
                        const std::atomic<bool>* cancel = nullptr, UniPCOptions options = {});

}  // namespace framesmith::sampling
