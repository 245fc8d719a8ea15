#include "sampling/guidance.h"

#include <framesmith/error.h>

#include <numeric>
#include <vector>

namespace framesmith::sampling {

at::Tensor rescale_noise_cfg(const at::Tensor& noise_cfg, const at::Tensor& noise_pred_text,
                             double rescale) {
  if (rescale == 0.0) return noise_cfg;
  std::vector<std::int64_t> dims(static_cast<std::size_t>(noise_pred_text.dim() - 1));
  std::iota(dims.begin(), dims.end(), 1);
  const at::Tensor std_text = noise_pred_text.std(dims, /*unbiased=*/true, /*keepdim=*/true);
  const at::Tensor std_cfg = noise_cfg.std(dims, /*unbiased=*/true, /*keepdim=*/true);
  const at::Tensor rescaled = noise_cfg * (std_text / std_cfg);
  return rescale * rescaled + (1.0 - rescale) * noise_cfg;
}

at::Tensor apply_cfg(const at::Tensor& positive, const at::Tensor& negative, double scale,
                     double rescale) {
  at::Tensor cfg;
  if (scale == 1.0) {
    // zeros + 1 * (positive - zeros) is positive, bit for bit.
    cfg = positive;
  } else {
    if (!negative.defined() || negative.sizes() != positive.sizes()) {
      throw Error(
          "CFG: the negative prediction is missing or has another shape than the "
          "positive one");
    }
    cfg = negative + scale * (positive - negative);
  }
  return rescale_noise_cfg(cfg, positive, rescale);
}

}  // namespace framesmith::sampling
