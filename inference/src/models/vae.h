// HunyuanVideo's causal 3-D VAE (diffusers 0.33.1 `AutoencoderKLHunyuanVideo`), as FramePack uses
// it: encode the start image, decode each section's latents. Plain tensors and at:: ops; the
// layers live in vae_blocks.h, the tiling in vae.cpp.
//
// Every path equals diffusers: whole decode, the default temporal tiling (use_framewise_decoding)
// and spatial tiling on top (enable_tiling), including diffusers' quirks (see Vae::decode).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "models/weights.h"

namespace framesmith {

namespace vae_detail {
struct Encoder;
struct Decoder;
}  // namespace vae_detail

// The fields of the VAE's config.json (diffusers' register_to_config arguments and defaults).
struct VaeConfig {
  std::int64_t in_channels = 3;
  std::int64_t out_channels = 3;
  std::int64_t latent_channels = 16;
  std::vector<std::string> down_block_types =
      std::vector<std::string>(4, "HunyuanVideoDownBlock3D");
  std::vector<std::string> up_block_types = std::vector<std::string>(4, "HunyuanVideoUpBlock3D");
  std::vector<std::int64_t> block_out_channels = {128, 256, 512, 512};
  std::int64_t layers_per_block = 2;
  std::string act_fn = "silu";
  std::int64_t norm_num_groups = 32;
  double scaling_factor = 0.476986;
  std::int64_t spatial_compression_ratio = 8;
  std::int64_t temporal_compression_ratio = 4;
  bool mid_block_add_attention = true;

  // Missing keys take diffusers' defaults; wrong types or unsupported values throw Error.
  static VaeConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  void validate() const;  // throws Error naming the offending field
};

// Every checkpoint key with its shape, in the order the model reads them.
std::vector<ParamSpec> vae_parameter_specs(const VaeConfig& cfg);

// diffusers' tiling switches and sizes, in pixels / pixel frames (as diffusers keeps them).
struct VaeTiling {
  bool temporal = true;  // use_framewise_decoding / use_framewise_encoding (diffusers' default on)
  bool spatial = false;  // enable_tiling()
  std::int64_t tile_sample_min_height = 256, tile_sample_min_width = 256;
  std::int64_t tile_sample_stride_height = 192, tile_sample_stride_width = 192;
  std::int64_t tile_sample_min_num_frames = 16, tile_sample_stride_num_frames = 12;
};

// The diagonal Gaussian posterior of encode(); logvar is already clamped to [-30, 20].
struct VaePosterior {
  at::Tensor mean, logvar;
  at::Tensor mode() const { return mean; }
  at::Tensor std() const;  // exp(0.5 * logvar)
};

// One temporal tile of diffusers' _temporal_tiled_decode: latent frames [begin, end).
struct VaeTemporalTile {
  std::int64_t begin = 0, end = 0;
};

// The latent tiles that decode() walks for `num_latent_frames` latents under `tiling` (one tile,
// all frames, when temporal tiling does not apply). A memory governor can decode tile by tile with
// Vae::decode_tile and join the pieces with VaeTemporalAssembler.
std::vector<VaeTemporalTile> vae_decode_tiles(std::int64_t num_latent_frames,
                                              const VaeTiling& tiling,
                                              std::int64_t temporal_compression_ratio);

// Joins temporally tiled outputs as diffusers does: tiles after the first lose their first frame,
// their first `blend` frames are blended linearly with the previous tile's last ones, and each
// tile contributes `stride` frames (the first stride + 1). Finished frames can be taken early.
class VaeTemporalAssembler {
 public:
  VaeTemporalAssembler(std::int64_t blend, std::int64_t stride, std::int64_t total_frames);
  // `tile`: [B, C, T, H, W] output of one tile, first frame not yet dropped.
  void add(at::Tensor tile);
  // Frames finished so far and not yet taken (undefined when there are none).
  at::Tensor take_ready();
  // All remaining frames (possibly none), cropped so that the total is `total_frames`.
  at::Tensor finish();

 private:
  std::int64_t blend_, stride_, total_, emitted_ = 0, count_ = 0;
  at::Tensor prev_;
  std::vector<at::Tensor> ready_;
};

class Vae {
 public:
  Vae(VaeConfig cfg, const Weights& w);
  ~Vae();
  Vae(const Vae&) = delete;
  Vae& operator=(const Vae&) = delete;

  // pixels: [B, in_channels, T, H, W] in [-1, 1], T = 1 + k * temporal ratio, H and W multiples of
  // the spatial ratio. Converted to the model's dtype and device.
  VaePosterior encode(const at::Tensor& pixels, const VaeTiling& tiling = {}) const;
  // z: UNSCALED latents [B, latent_channels, T, h, w] -> [B, out_channels, 1 + 4 (T - 1), 8h, 8w].
  at::Tensor decode(const at::Tensor& z, const VaeTiling& tiling = {}) const;

  // post_quant_conv + decoder on exactly these latent frames, no tiling (one temporal tile).
  at::Tensor decode_tile(const at::Tensor& z) const;
  // diffusers' tiled_decode (spatial tiles only) of these latent frames.
  at::Tensor decode_spatial_tiled(const at::Tensor& z, const VaeTiling& tiling) const;

  const VaeConfig& config() const { return cfg_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

 private:
  at::Tensor encode_moments(const at::Tensor& x, const VaeTiling& tiling) const;
  at::Tensor encode_tile(const at::Tensor& x) const;
  at::Tensor encode_spatial_tiled(const at::Tensor& x, const VaeTiling& tiling) const;
  at::Tensor encode_temporal_tiled(const at::Tensor& x, const VaeTiling& tiling) const;
  at::Tensor decode_temporal_tiled(const at::Tensor& z, const VaeTiling& tiling) const;
  at::Tensor prepare(const at::Tensor& t, const char* what, std::int64_t channels) const;

  VaeConfig cfg_;
  at::ScalarType dtype_;
  at::Device device_;
  std::unique_ptr<vae_detail::Encoder> encoder_;
  std::unique_ptr<vae_detail::Decoder> decoder_;
  at::Tensor quant_w_, quant_b_, post_quant_w_, post_quant_b_;
};

// Loads `folder`/config.json and the folder's safetensors checkpoint (single file or sharded).
// Every missing or misshapen tensor is reported in one Error.
// `store`: the folder's checkpoint when the caller has opened it already (it shares it), else it
// is opened here.
std::shared_ptr<Vae> load_vae(const std::string& folder, at::ScalarType dtype, at::Device device,
                              std::shared_ptr<const io::TensorStore> store = nullptr);

}  // namespace framesmith
