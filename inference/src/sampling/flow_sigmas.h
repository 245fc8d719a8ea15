// Flow-matching noise schedule of FramePack (diffusers_helper/pipelines/k_diffusion_hunyuan.py):
// sigmas 1 -> 0 in `steps` steps, bent by the flux time shift whose strength `mu` grows with the
// number of packed latent tokens (more tokens -> more time at high noise).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

namespace framesmith::sampling {

// Packed sequence length FramePack feeds calculate_flux_mu: T * H * W / 4 (2x2 patches), latent
// frames and latent height/width, integer division as in Python's //.
std::int64_t flux_seq_len(std::int64_t latent_frames, std::int64_t latent_height,
                          std::int64_t latent_width);

// mu linear in the sequence length through (256, 0.5) and (4096, 1.15), capped at log(exp_max).
double calculate_flux_mu(double seq_len, double exp_max = 7.0);

// mu for a fixed shift: FramePack's `mu = log(shift)`.
double flux_mu_from_shift(double shift);

// exp(mu) / (exp(mu) + (1/t - 1)) for one t in (0, 1], in double (for documentation and tests;
// the schedule itself is computed in float32 by flux_sigmas()).
double flux_time_shift(double t, double mu);

// The steps + 1 sigmas, float32 on the CPU, exactly as get_flux_sigmas_from_mu computes them
// (linspace(1, 0) then the shift, op by op in float32, so the last sigma is exactly 0).
at::Tensor flux_sigmas(std::int64_t steps, double mu);

// Sigmas for a latent of T x H x W: mu from `shift` when given, else from the sequence length.
at::Tensor flux_sigmas_for_latent(std::int64_t steps, std::int64_t latent_frames,
                                  std::int64_t latent_height, std::int64_t latent_width,
                                  std::optional<double> shift = std::nullopt);

}  // namespace framesmith::sampling
