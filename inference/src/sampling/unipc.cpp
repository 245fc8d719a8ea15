#include "sampling/unipc.h"

#include <framesmith/error.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>

#include "memory/simulated_device.h"

namespace framesmith::sampling {
namespace {

// Python's expand_dims(v, dims): v followed by dims - 1 singleton axes, so a (B,) tensor lines up
// with the batch axis of a (B, C, T, H, W) sample and a 0-dim one broadcasts everywhere.
at::Tensor expand_dims(const at::Tensor& v, std::int64_t dims) {
  std::vector<std::int64_t> shape(v.sizes().begin(), v.sizes().end());
  shape.insert(shape.end(), static_cast<std::size_t>(dims - 1), 1);
  return v.reshape(shape);
}

at::Tensor to_host_float(const at::Tensor& t) {
  return t.to(at::TensorOptions().device(at::kCPU).dtype(at::kFloat)).contiguous();
}

std::string shape_string(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

}  // namespace

UniPCSampler::UniPCSampler(at::Tensor sigmas, UniPCOptions options)
    : sigmas_(to_host_float(sigmas)), options_(options) {
  if (sigmas_.dim() != 1 || sigmas_.size(0) < 2) {
    throw Error("UniPC: sigmas must be a 1-D tensor of steps + 1 >= 2 values, got shape " +
                shape_string(sigmas.sizes()));
  }
  // FramePack: order = min(3, len(sigmas) - 2); 0 for a single step (plain x0 prediction).
  order_ = std::min<int>(3, static_cast<int>(sigmas_.size(0)) - 2);
}

UniPCState UniPCSampler::start(const at::Tensor& noise) const {
  if (noise.dim() < 2) {
    throw Error("UniPC: initial noise must be (B, C, ...), got shape " +
                shape_string(noise.sizes()));
  }
  UniPCState s;
  s.x = to_host_float(noise);
  return s;
}

at::Tensor UniPCSampler::denoise(const FlowModel& model, const at::Tensor& x,
                                 const at::Tensor& t) const {
  at::Tensor pred;
  {
    // The model is device work; what the sampler keeps of it is its host state (step()).
    const memory::OnDeviceScope device;
    pred = model(x, t);
  }
  if (!pred.defined() || pred.sizes() != x.sizes()) {
    throw Error("UniPC: the model returned a prediction of shape " +
                (pred.defined() ? shape_string(pred.sizes()) : std::string("(undefined)")) +
                " for a sample of shape " + shape_string(x.sizes()));
  }
  // fm_wrapper: x0 = x.float() - pred.float() * sigma, x as the model saw it.
  const at::Tensor x_seen = x.to(options_.model_input_dtype).to(at::kFloat);
  return x_seen - to_host_float(pred) * expand_dims(t, x.dim());
}

std::pair<at::Tensor, at::Tensor> UniPCSampler::update(const UniPCState& state, const at::Tensor& t,
                                                       int order, const FlowModel& model) const {
  // Written op for op after FlowMatchUniPC.update_fn so the float32 coefficients agree; the
  // small scalar tensors stay tensors (0-dim or (B,)) exactly where Python has them.
  const at::Tensor& x = state.x;
  const std::int64_t dims = x.dim();
  const std::size_t n = state.model_prev.size();
  if (order < 1 || static_cast<std::size_t>(order) > n) {
    throw Error("UniPC: update of order " + std::to_string(order) +
                " needs that many previous "
                "predictions, have " +
                std::to_string(n));
  }
  const at::Tensor& t_prev_0 = state.t_prev[n - 1];
  const at::Tensor& model_prev_0 = state.model_prev[n - 1];
  const at::Tensor lambda_prev_0 = at::log(t_prev_0).neg();
  const at::Tensor lambda_t = at::log(t).neg();
  const at::Tensor h = lambda_t - lambda_prev_0;

  std::vector<at::Tensor> rks, d1s;
  for (int i = 1; i < order; ++i) {
    const at::Tensor lambda_prev_i = at::log(state.t_prev[n - 1 - i]).neg();
    const at::Tensor rk = ((lambda_prev_i - lambda_prev_0) / h)[0];
    rks.push_back(rk);
    d1s.push_back((state.model_prev[n - 1 - i] - model_prev_0) / rk);
  }
  rks.push_back(at::ones({}, at::kFloat));
  const at::Tensor rks_t = at::stack(rks);

  const at::Tensor hh = h[0].neg();
  const at::Tensor h_phi_1 = at::expm1(hh);
  at::Tensor h_phi_k = h_phi_1 / hh - 1;
  const at::Tensor b_h = options_.variant == UniPCVariant::kBh1 ? hh : at::expm1(hh);

  std::vector<at::Tensor> r_rows, b_vals;
  std::int64_t factorial_i = 1;
  for (int i = 1; i <= order; ++i) {
    r_rows.push_back(at::pow(rks_t, static_cast<std::int64_t>(i - 1)));
    b_vals.push_back(h_phi_k * factorial_i / b_h);
    factorial_i *= (i + 1);
    h_phi_k = h_phi_k / hh - 1.0 / static_cast<double>(factorial_i);
  }
  const at::Tensor r_mat = at::stack(r_rows);
  const at::Tensor b_vec = at::stack(b_vals);

  at::Tensor d1s_t, rhos_p;
  if (!d1s.empty()) {
    d1s_t = at::stack(d1s, 1);
    rhos_p = order == 2 ? at::full({1}, 0.5, at::kFloat)
                        : at::linalg_solve(r_mat.slice(0, 0, order - 1).slice(1, 0, order - 1),
                                           b_vec.slice(0, 0, order - 1));
  }
  const at::Tensor rhos_c =
      order == 1 ? at::full({1}, 0.5, at::kFloat) : at::linalg_solve(r_mat, b_vec);

  const at::Tensor x_t_ =
      expand_dims(t / t_prev_0, dims) * x - expand_dims(h_phi_1, dims) * model_prev_0;
  at::Tensor x_pred = x_t_;
  if (d1s_t.defined()) {
    const at::Tensor pred_res = at::tensordot(d1s_t, rhos_p, {1}, {0});
    x_pred = x_t_ - expand_dims(b_h, dims) * pred_res;
  }

  at::Tensor model_t = denoise(model, x_pred, t);

  const at::Tensor d1_t = model_t - model_prev_0;
  at::Tensor corr = rhos_c[-1] * d1_t;
  if (d1s_t.defined()) {
    const at::Tensor corr_res = at::tensordot(d1s_t, rhos_c.slice(0, 0, order - 1), {1}, {0});
    corr = corr_res + corr;
  }
  at::Tensor x_next = x_t_ - expand_dims(b_h, dims) * corr;
  return {std::move(x_next), std::move(model_t)};
}

UniPCState UniPCSampler::step(const UniPCState& state, const FlowModel& model) const {
  const int i = state.next_step;
  if (i < 0 || i >= num_steps()) {
    throw Error("UniPC: step " + std::to_string(i) + " is outside 0.." +
                std::to_string(num_steps() - 1));
  }
  if (!state.x.defined()) throw Error("UniPC: the sampler state has no sample (call start())");
  // The sampler's state (sample, model outputs, sigmas) lives on the host, so that a step the
  // governor retries after an OOM starts again from it; only the model call is device work.
  const memory::HostScope host;
  const at::Tensor vec_t = sigmas_[i].expand({state.x.size(0)}).contiguous();

  UniPCState next;
  next.next_step = i + 1;
  if (i == 0) {
    next.x = state.x;
    next.model_prev = {denoise(model, state.x, vec_t)};
    next.t_prev = {vec_t};
  } else {
    const int order = std::min(i, order_);
    auto [x_t, model_t] = update(state, vec_t, order, model);
    next.x = std::move(x_t);
    next.model_prev = state.model_prev;
    next.t_prev = state.t_prev;
    next.model_prev.push_back(std::move(model_t));
    next.t_prev.push_back(vec_t);
  }
  // Keep the last `order` entries (Python's list[-order:], which keeps all when order is 0).
  const std::size_t keep = order_ > 0 ? static_cast<std::size_t>(order_) : next.model_prev.size();
  while (next.model_prev.size() > keep) {
    next.model_prev.erase(next.model_prev.begin());
    next.t_prev.erase(next.t_prev.begin());
  }
  return next;
}

at::Tensor UniPCSampler::result(const UniPCState& state) {
  if (state.model_prev.empty()) throw Error("UniPC: no step has run yet, there is no result");
  return state.model_prev.back();
}

at::Tensor sample_unipc(const FlowModel& model, const at::Tensor& noise, const at::Tensor& sigmas,
                        const StepCallback& callback, const std::atomic<bool>* cancel,
                        UniPCOptions options) {
  const UniPCSampler sampler(sigmas, options);
  UniPCState state = sampler.start(noise);
  while (!sampler.finished(state)) {
    if (cancel != nullptr && cancel->load()) throw Cancelled();
    const int i = state.next_step;
    state = sampler.step(state, model);
    if (callback) callback(i, state.x, state.model_prev.back());
  }
  return UniPCSampler::result(state);
}

}  // namespace framesmith::sampling
