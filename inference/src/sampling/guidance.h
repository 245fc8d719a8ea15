// Classifier-free guidance as FramePack's fm_wrapper (diffusers_helper/k_diffusion/wrapper.py)
// combines the positive and negative flow predictions, with diffusers' guidance rescale.
#pragma once
#include <ATen/ATen.h>

namespace framesmith::sampling {

// rescale_noise_cfg: blend `rescale` of the CFG prediction renormalised to the positive
// prediction's per-sample std (unbiased, over all but the batch axis) back in. rescale == 0
// returns `noise_cfg` unchanged.
at::Tensor rescale_noise_cfg(const at::Tensor& noise_cfg, const at::Tensor& noise_pred_text,
                             double rescale);

// negative + scale * (positive - negative), then rescale_noise_cfg against the positive one.
// With scale == 1 FramePack's negative is zeros, so the result is the positive prediction
// (rescaled when rescale != 0); `negative` may then be undefined.
at::Tensor apply_cfg(const at::Tensor& positive, const at::Tensor& negative, double scale,
                     double rescale);

}  // namespace framesmith::sampling
