#include "sampling/flow_sigmas.h"

#include <framesmith/error.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace framesmith::sampling {

std::int64_t flux_seq_len(std::int64_t latent_frames, std::int64_t latent_height,
                          std::int64_t latent_width) {
  return latent_frames * latent_height * latent_width / 4;
}

double calculate_flux_mu(double seq_len, double exp_max) {
  constexpr double x1 = 256.0, y1 = 0.5, x2 = 4096.0, y2 = 1.15;
  const double k = (y2 - y1) / (x2 - x1);
  const double b = y1 - k * x1;
  return std::min(k * seq_len + b, std::log(exp_max));
}

double flux_mu_from_shift(double shift) {
  if (!(shift > 0.0)) {
    throw Error("flow shift must be positive, got " + std::to_string(shift));
  }
  return std::log(shift);
}

double flux_time_shift(double t, double mu) {
  const double e = std::exp(mu);
  return e / (e + (1.0 / t - 1.0));
}

at::Tensor flux_sigmas(std::int64_t steps, double mu) {
  if (steps < 1) throw Error("number of sampling steps must be >= 1, got " + std::to_string(steps));
  const double e = std::exp(mu);
  const at::Tensor t = at::linspace(1.0, 0.0, steps + 1, at::TensorOptions().dtype(at::kFloat));
  // Python evaluates `e / (e + (1 / t - 1) ** 1.0)` on a float32 tensor: `1 / t` and `e / ...`
  // are Tensor.__rtruediv__, i.e. reciprocal() then a multiply; `** 1.0` is a copy. Same ops here
  // so the float32 rounding (sigma[0] is e * (1/e), not exactly 1) agrees bit for bit.
  const at::Tensor inv_t_minus_1 = at::reciprocal(t).mul(1.0).sub(1.0);
  return at::reciprocal(inv_t_minus_1.add(e)).mul(e);
}

at::Tensor flux_sigmas_for_latent(std::int64_t steps, std::int64_t latent_frames,
                                  std::int64_t latent_height, std::int64_t latent_width,
                                  std::optional<double> shift) {
  const double mu = shift ? flux_mu_from_shift(*shift)
                          : calculate_flux_mu(static_cast<double>(
                                flux_seq_len(latent_frames, latent_height, latent_width)));
  return flux_sigmas(steps, mu);
}

}  // namespace framesmith::sampling
