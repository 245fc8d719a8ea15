// The cheap latent -> RGB preview FramePack shows while sampling (diffusers_helper/hunyuan.py
// vae_decode_fake): a 1x1x1 convolution of the 16 latent channels with fixed factors (from
// ComfyUI) plus a bias, clamped to [0, 1]. No VAE involved.
#pragma once
#include <ATen/ATen.h>

namespace framesmith::pipeline {

// latents (B, 16, T, H, W), any float dtype/device -> images (B, 3, T, H, W) in [0, 1], same
// dtype and device.
at::Tensor vae_decode_fake(const at::Tensor& latents);

// FramePack's preview picture: (images * 255).clip(0, 255) truncated to uint8 and laid out
// 'b c t h w -> (b h) (t w) c', i.e. the frames side by side. CPU uint8 (B*H, T*W, 3).
at::Tensor preview_rgb8(const at::Tensor& images);

}  // namespace framesmith::pipeline
