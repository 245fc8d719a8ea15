#include "pipeline/preview.h"

#include <framesmith/error.h>

#include <sstream>

namespace framesmith::pipeline {
namespace {

constexpr int kLatentChannels = 16;

// latent channel c -> (r, g, b) contribution, FramePack's latent_rgb_factors. Kept in double and
// converted to the latent dtype once, as torch.tensor(python_floats, dtype=...) does.
constexpr double kRgbFactors[kLatentChannels][3] = {
    {-0.0395, -0.0331, 0.0445},  {0.0696, 0.0795, 0.0518},    {0.0135, -0.0945, -0.0282},
    {0.0108, -0.0250, -0.0765},  {-0.0209, 0.0032, 0.0224},   {-0.0804, -0.0254, -0.0639},
    {-0.0991, 0.0271, -0.0669},  {-0.0646, -0.0422, -0.0400}, {-0.0696, -0.0595, -0.0894},
    {-0.0799, -0.0208, -0.0375}, {0.1166, 0.1627, 0.0962},    {0.1165, 0.0432, 0.0407},
    {-0.2315, -0.1920, -0.1355}, {-0.0270, 0.0401, -0.0821},  {-0.0616, -0.0997, -0.0727},
    {0.0249, -0.0469, -0.1703}};
constexpr double kRgbBias[3] = {0.0259, -0.0192, -0.0761};

}  // namespace

at::Tensor vae_decode_fake(const at::Tensor& latents) {
  if (latents.dim() != 5 || latents.size(1) != kLatentChannels) {
    std::ostringstream o;
    o << "preview: latents must be (B, 16, T, H, W), got " << latents.sizes();
    throw Error(o.str());
  }
  const auto opts = latents.options();
  // (16, 3) factors -> conv weight (3 out, 16 in, 1, 1, 1), as FramePack's transpose(0, 1).
  const at::Tensor factors =
      at::from_blob(const_cast<double*>(&kRgbFactors[0][0]), {kLatentChannels, 3}, at::kDouble);
  const at::Tensor weight = factors.t().contiguous().to(opts).view({3, kLatentChannels, 1, 1, 1});
  const at::Tensor bias = at::from_blob(const_cast<double*>(kRgbBias), {3}, at::kDouble).to(opts);
  return at::conv3d(latents, weight, bias).clamp(0.0, 1.0);
}

at::Tensor preview_rgb8(const at::Tensor& images) {
  if (images.dim() != 5 || images.size(1) != 3) {
    std::ostringstream o;
    o << "preview: images must be (B, 3, T, H, W), got " << images.sizes();
    throw Error(o.str());
  }
  const std::int64_t b = images.size(0), t = images.size(2), h = images.size(3), w = images.size(4);
  // numpy's astype(uint8) after clip truncates toward zero, as a float->uint8 cast does here.
  const at::Tensor px = (images.to(at::kCPU, at::kFloat) * 255.0).clamp(0.0, 255.0).to(at::kByte);
  // b c t h w -> b h t w c -> (b h) (t w) c
  return px.permute({0, 3, 2, 4, 1}).reshape({b * h, t * w, 3}).contiguous();
}

}  // namespace framesmith::pipeline
