// The layers of HunyuanVideo's causal VAE (diffusers 0.33.1 autoencoder_kl_hunyuan_video.py):
// causal 3-D convolution, ResNet block, causal frame attention, down/up sampling, encoder, decoder.
// Internal to models/vae*.cpp. Each layer is built from a ParamSource so that one walk over the
// architecture both lists the checkpoint keys and loads them.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "models/vae.h"
#include "models/weights.h"

namespace framesmith::vae_detail {

// Either reads parameters from Weights or records their names and shapes (then returns undefined
// tensors), so that vae_parameter_specs and loading cannot disagree.
class ParamSource {
 public:
  explicit ParamSource(const Weights* weights) : weights_(weights) {}
  explicit ParamSource(std::vector<ParamSpec>* specs) : specs_(specs) {}

  at::Tensor get(const std::string& name, std::vector<std::int64_t> shape,
                 Init init = Init::kNormal) const;
  ParamSource sub(const std::string& name) const;

 private:
  const Weights* weights_ = nullptr;
  std::vector<ParamSpec>* specs_ = nullptr;
  std::string prefix_;
};

struct GroupNorm {
  at::Tensor weight, bias;
  std::int64_t groups = 32;
  GroupNorm() = default;
  GroupNorm(const ParamSource& p, std::int64_t channels, std::int64_t groups);
  at::Tensor forward(const at::Tensor& x) const;
};

// Conv3d behind a replicate pad: k/2 on each side in H and W, k-1 frames in front (causal).
struct CausalConv3d {
  at::Tensor weight, bias;
  std::int64_t in_channels = 0, out_channels = 0;
  std::int64_t kernel = 3;
  std::array<std::int64_t, 3> stride{1, 1, 1};
  CausalConv3d() = default;
  // Parameters under `p` + "conv." (diffusers wraps nn.Conv3d as `.conv`).
  CausalConv3d(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t kernel,
               std::array<std::int64_t, 3> stride = {1, 1, 1});
  at::Tensor forward(const at::Tensor& x) const;
};

struct ResnetBlock {
  GroupNorm norm1, norm2;
  CausalConv3d conv1, conv2;
  bool has_shortcut = false;
  CausalConv3d conv_shortcut;  // 1x1x1, only when channels change
  ResnetBlock(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t groups);
  at::Tensor forward(const at::Tensor& x) const;
};

// diffusers' Attention(heads=1, group_norm, residual_connection, upcast_softmax) over all
// positions of all frames with prepare_causal_attention_mask: a position sees every position of
// its own and earlier frames.
struct FrameCausalAttention {
  std::int64_t channels = 0;
  GroupNorm group_norm;
  at::Tensor to_q_w, to_q_b, to_k_w, to_k_b, to_v_w, to_v_b, to_out_w, to_out_b;
  FrameCausalAttention(const ParamSource& p, std::int64_t channels, std::int64_t groups);
  at::Tensor forward(const at::Tensor& x) const;  // x: [B, C, T, H, W]
};

struct MidBlock {
  std::vector<ResnetBlock> resnets;              // 2
  std::vector<FrameCausalAttention> attentions;  // 1, or 0 without mid_block_add_attention
  MidBlock(const ParamSource& p, std::int64_t channels, std::int64_t groups, bool add_attention);
  at::Tensor forward(const at::Tensor& x) const;
};

struct DownBlock {
  std::vector<ResnetBlock> resnets;
  bool has_downsampler = false;
  CausalConv3d downsampler;  // stride (t, s, s)
  DownBlock(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t layers,
            std::int64_t groups, std::array<std::int64_t, 3> stride);
  at::Tensor forward(const at::Tensor& x) const;
};

// Nearest upsampling by (t, s, s) where the first frame is only upsampled in space (so T frames
// become 1 + t (T - 1)), then a causal conv.
struct UpBlock {
  std::vector<ResnetBlock> resnets;
  bool has_upsampler = false;
  std::array<std::int64_t, 3> factor{1, 1, 1};
  CausalConv3d upsampler;
  UpBlock(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t layers,
          std::int64_t groups, std::array<std::int64_t, 3> factor);
  at::Tensor forward(const at::Tensor& x) const;
};

struct Encoder {
  CausalConv3d conv_in;
  std::vector<DownBlock> down_blocks;
  MidBlock mid_block;
  GroupNorm conv_norm_out;
  CausalConv3d conv_out;
  Encoder(const ParamSource& p, const VaeConfig& cfg);
  at::Tensor forward(const at::Tensor& x) const;  // -> [B, 2 * latent, T', H/8, W/8]
};

// One step of the decoder, in the order it runs. Decoder::steps() is the one description of the
// decoder's structure: the whole decode (Decoder::forward), the streamed decode and its memory
// estimate (memory/chunked_decode.cpp) all walk it, so that a change to the VAE is made once.
struct DecoderStep {
  enum class Kind {
    kConvIn,     // conv_in (the streamed decode runs post_quant_conv in front of it)
    kResnet,     // a ResnetBlock (mid block or up block)
    kAttention,  // the mid block's FrameCausalAttention
    kUpsample,   // an up block's causal nearest upsampling by `factor`, then its conv
    kConvOut,    // conv_norm_out, SiLU, conv_out
  };
  Kind kind = Kind::kConvIn;
  const CausalConv3d* conv = nullptr;               // kConvIn, kUpsample, kConvOut
  const GroupNorm* norm = nullptr;                  // kConvOut
  const ResnetBlock* resnet = nullptr;              // kResnet
  const FrameCausalAttention* attention = nullptr;  // kAttention
  std::array<std::int64_t, 3> factor{1, 1, 1};      // kUpsample
  std::int64_t in_channels = 0, out_channels = 0;
};

struct Decoder {
  CausalConv3d conv_in;
  MidBlock mid_block;
  std::vector<UpBlock> up_blocks;
  GroupNorm conv_norm_out;
  CausalConv3d conv_out;
  // Built from a ParamSource that records specs, the layers hold no tensors but their channel
  // counts: steps() then describes the decoder of a config without weights (the planner's case).
  Decoder(const ParamSource& p, const VaeConfig& cfg);
  std::vector<DecoderStep> steps() const;  // pointers into this decoder
  at::Tensor forward(const at::Tensor& z) const;
};

// Stride (t, s, s) of down block i / upsampling factor of up block i, as diffusers derives them
// from the compression ratios ({1, 1, 1}: no resampler).
std::array<std::int64_t, 3> down_block_stride(const VaeConfig& cfg, std::size_t i);
std::array<std::int64_t, 3> up_block_factor(const VaeConfig& cfg, std::size_t i);

// nearest-neighbour upsampling by integer factors (exactly F.interpolate(mode="nearest")).
at::Tensor upsample_nearest(const at::Tensor& x, std::int64_t ft, std::int64_t fh, std::int64_t fw);
// The up blocks' upsampling: the first frame in space only (it stands alone in the causal VAE),
// the others in time and space, so T frames become 1 + ft (T - 1).
at::Tensor upsample_causal(const at::Tensor& x, std::array<std::int64_t, 3> factor);

}  // namespace framesmith::vae_detail
