#include "models/vae_blocks.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "framesmith/error.h"
#include "models/attention.h"

namespace framesmith::vae_detail {

namespace {

constexpr double kEps = 1e-6;  // every GroupNorm of the model (resnet_eps and the out norms)

// Bounds the attention scores of one query block (elements), keeping the mid-block attention's
// peak memory independent of the frame count and resolution.
constexpr std::int64_t kMaxScoreElements = std::int64_t{1} << 27;

std::int64_t log2_exact(std::int64_t v) {
  std::int64_t n = 0;
  while ((std::int64_t{1} << n) < v) ++n;
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ParamSource

at::Tensor ParamSource::get(const std::string& name, std::vector<std::int64_t> shape,
                            Init init) const {
  const std::string key = prefix_ + name;
  if (specs_) {
    specs_->push_back(ParamSpec{key, std::move(shape), init});
    return at::Tensor();
  }
  return weights_->get(key, shape);
}

ParamSource ParamSource::sub(const std::string& name) const {
  ParamSource s = *this;
  s.prefix_ = prefix_ + name + ".";
  return s;
}

// ---------------------------------------------------------------------------------------------
// Layers

GroupNorm::GroupNorm(const ParamSource& p, std::int64_t channels, std::int64_t g)
    : weight(p.get("weight", {channels}, Init::kOnes)),
      bias(p.get("bias", {channels}, Init::kZeros)),
      groups(g) {}

at::Tensor GroupNorm::forward(const at::Tensor& x) const {
  return at::group_norm(x, groups, weight, bias, kEps);
}

CausalConv3d::CausalConv3d(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t k,
                           std::array<std::int64_t, 3> s)
    : weight(p.sub("conv").get("weight", {out, in, k, k, k})),
      bias(p.sub("conv").get("bias", {out})),
      in_channels(in),
      out_channels(out),
      kernel(k),
      stride(s) {}

at::Tensor CausalConv3d::forward(const at::Tensor& x) const {
  at::Tensor padded = x;
  if (kernel > 1) {
    // diffusers: F.pad(x, (k/2, k/2, k/2, k/2, k-1, 0), mode="replicate"): W, H, then T (front).
    const std::int64_t s = kernel / 2;
    padded = at::replication_pad3d(x, {s, s, s, s, kernel - 1, 0});
  }
  return at::conv3d(padded, weight, bias, stride);
}

ResnetBlock::ResnetBlock(const ParamSource& p, std::int64_t in, std::int64_t out,
                         std::int64_t groups)
    : norm1(p.sub("norm1"), in, groups),
      norm2(p.sub("norm2"), out, groups),
      conv1(p.sub("conv1"), in, out, 3),
      conv2(p.sub("conv2"), out, out, 3),
      has_shortcut(in != out) {
  if (has_shortcut) conv_shortcut = CausalConv3d(p.sub("conv_shortcut"), in, out, 1);
}

at::Tensor ResnetBlock::forward(const at::Tensor& x) const {
  const at::Tensor residual = x.contiguous();
  at::Tensor h = conv1.forward(at::silu(norm1.forward(residual)));
  h = conv2.forward(at::silu(norm2.forward(h)));  // dropout is 0 (and inference)
  return h + (has_shortcut ? conv_shortcut.forward(residual) : residual);
}

FrameCausalAttention::FrameCausalAttention(const ParamSource& p, std::int64_t c,
                                           std::int64_t groups)
    : channels(c),
      group_norm(p.sub("group_norm"), c, groups),
      to_q_w(p.get("to_q.weight", {c, c})),
      to_q_b(p.get("to_q.bias", {c})),
      to_k_w(p.get("to_k.weight", {c, c})),
      to_k_b(p.get("to_k.bias", {c})),
      to_v_w(p.get("to_v.weight", {c, c})),
      to_v_b(p.get("to_v.bias", {c})),
      to_out_w(p.get("to_out.0.weight", {c, c})),
      to_out_b(p.get("to_out.0.bias", {c})) {}

at::Tensor FrameCausalAttention::forward(const at::Tensor& x) const {
  const std::int64_t b = x.size(0), c = x.size(1), t = x.size(2), hgt = x.size(3), wid = x.size(4);
  const std::int64_t hw = hgt * wid;
  // [B, C, T, H, W] -> [B, T*H*W, C]: one token per position, frames in order.
  const at::Tensor tokens = x.permute({0, 2, 3, 4, 1}).reshape({b, t * hw, c});
  const at::Tensor normed = group_norm.forward(tokens.transpose(1, 2)).transpose(1, 2);
  // One head of width C: [B, 1, N, C].
  const at::Tensor q = at::linear(normed, to_q_w, to_q_b).unsqueeze(1);
  const at::Tensor k = at::linear(normed, to_k_w, to_k_b).unsqueeze(1);
  const at::Tensor v = at::linear(normed, to_v_w, to_v_b).unsqueeze(1);

  // prepare_causal_attention_mask lets frame f see frames 0..f. Masked keys get softmax weight
  // exactly 0, so attending frame f's queries to the first (f+1)*HW keys alone is the same
  // function, without the (THW)^2 mask.
  at::Tensor attended = at::empty_like(q);
  for (std::int64_t f = 0; f < t; ++f) {
    const std::int64_t keys = (f + 1) * hw;
    const std::int64_t chunk = std::max<std::int64_t>(1, kMaxScoreElements / (b * keys));
    attended.narrow(2, f * hw, hw)
        .copy_(
            attention(q.narrow(2, f * hw, hw), k.narrow(2, 0, keys), v.narrow(2, 0, keys), chunk));
  }
  const at::Tensor out = at::linear(attended.squeeze(1), to_out_w, to_out_b) + tokens;
  return out.reshape({b, t, hgt, wid, c}).permute({0, 4, 1, 2, 3});
}

MidBlock::MidBlock(const ParamSource& p, std::int64_t c, std::int64_t groups, bool add_attention) {
  resnets.emplace_back(p.sub("resnets.0"), c, c, groups);
  if (add_attention) attentions.emplace_back(p.sub("attentions.0"), c, groups);
  resnets.emplace_back(p.sub("resnets.1"), c, c, groups);
}

at::Tensor MidBlock::forward(const at::Tensor& x) const {
  at::Tensor h = resnets[0].forward(x);
  for (const auto& a : attentions) h = a.forward(h);
  return resnets[1].forward(h);
}

DownBlock::DownBlock(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t layers,
                     std::int64_t groups, std::array<std::int64_t, 3> s) {
  for (std::int64_t i = 0; i < layers; ++i)
    resnets.emplace_back(p.sub("resnets." + std::to_string(i)), i == 0 ? in : out, out, groups);
  has_downsampler = s != std::array<std::int64_t, 3>{1, 1, 1};
  if (has_downsampler) downsampler = CausalConv3d(p.sub("downsamplers.0.conv"), out, out, 3, s);
}

at::Tensor DownBlock::forward(const at::Tensor& x) const {
  at::Tensor h = x;
  for (const auto& r : resnets) h = r.forward(h);
  return has_downsampler ? downsampler.forward(h) : h;
}

at::Tensor upsample_nearest(const at::Tensor& x, std::int64_t ft, std::int64_t fh,
                            std::int64_t fw) {
  const std::int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  // Nearest with an integer factor repeats each element: broadcast a size-1 axis after each dim.
  return x.reshape({b, c, t, 1, h, 1, w, 1})
      .expand({b, c, t, ft, h, fh, w, fw})
      .reshape({b, c, t * ft, h * fh, w * fw});
}

UpBlock::UpBlock(const ParamSource& p, std::int64_t in, std::int64_t out, std::int64_t layers,
                 std::int64_t groups, std::array<std::int64_t, 3> f)
    : factor(f) {
  for (std::int64_t i = 0; i < layers; ++i)
    resnets.emplace_back(p.sub("resnets." + std::to_string(i)), i == 0 ? in : out, out, groups);
  has_upsampler = f != std::array<std::int64_t, 3>{1, 1, 1};
  if (has_upsampler) upsampler = CausalConv3d(p.sub("upsamplers.0.conv"), out, out, 3);
}

at::Tensor upsample_causal(const at::Tensor& x, std::array<std::int64_t, 3> f) {
  const std::int64_t t = x.size(2);
  at::Tensor up = upsample_nearest(x.narrow(2, 0, 1), 1, f[1], f[2]);
  if (t > 1) up = at::cat({up, upsample_nearest(x.narrow(2, 1, t - 1), f[0], f[1], f[2])}, 2);
  return up;
}

at::Tensor UpBlock::forward(const at::Tensor& x) const {
  at::Tensor h = x;
  for (const auto& r : resnets) h = r.forward(h);
  return has_upsampler ? upsampler.forward(upsample_causal(h, factor)) : h;
}

// ---------------------------------------------------------------------------------------------
// Encoder / decoder

std::array<std::int64_t, 3> down_block_stride(const VaeConfig& cfg, std::size_t i) {
  const auto n = static_cast<std::int64_t>(cfg.block_out_channels.size());
  const std::int64_t ns = log2_exact(cfg.spatial_compression_ratio);
  const std::int64_t nt = log2_exact(cfg.temporal_compression_ratio);
  const auto ii = static_cast<std::int64_t>(i);
  const bool is_final = ii == n - 1;
  const bool spatial = ii < ns;
  // diffusers: ratio 4 downsamples time in the blocks just before the last, ratio 8 in the first.
  const bool time = cfg.temporal_compression_ratio == 4 ? (ii >= n - 1 - nt && !is_final) : ii < nt;
  return {time ? 2 : 1, spatial ? 2 : 1, spatial ? 2 : 1};
}

std::array<std::int64_t, 3> up_block_factor(const VaeConfig& cfg, std::size_t i) {
  const auto n = static_cast<std::int64_t>(cfg.block_out_channels.size());
  const std::int64_t ns = log2_exact(cfg.spatial_compression_ratio);
  const std::int64_t nt = log2_exact(cfg.temporal_compression_ratio);
  const auto ii = static_cast<std::int64_t>(i);
  const bool spatial = ii < ns;
  const bool time = ii >= n - 1 - nt && ii != n - 1;
  return {time ? 2 : 1, spatial ? 2 : 1, spatial ? 2 : 1};
}

Encoder::Encoder(const ParamSource& p, const VaeConfig& cfg)
    : conv_in(p.sub("conv_in"), cfg.in_channels, cfg.block_out_channels.front(), 3),
      mid_block(p.sub("mid_block"), cfg.block_out_channels.back(), cfg.norm_num_groups,
                cfg.mid_block_add_attention),
      conv_norm_out(p.sub("conv_norm_out"), cfg.block_out_channels.back(), cfg.norm_num_groups),
      conv_out(p.sub("conv_out"), cfg.block_out_channels.back(), 2 * cfg.latent_channels, 3) {
  std::int64_t prev = cfg.block_out_channels.front();
  for (std::size_t i = 0; i < cfg.block_out_channels.size(); ++i) {
    const std::int64_t out = cfg.block_out_channels[i];
    down_blocks.emplace_back(p.sub("down_blocks." + std::to_string(i)), prev, out,
                             cfg.layers_per_block, cfg.norm_num_groups, down_block_stride(cfg, i));
    prev = out;
  }
}

at::Tensor Encoder::forward(const at::Tensor& x) const {
  at::Tensor h = conv_in.forward(x);
  for (const auto& d : down_blocks) h = d.forward(h);
  h = mid_block.forward(h);
  return conv_out.forward(at::silu(conv_norm_out.forward(h)));
}

Decoder::Decoder(const ParamSource& p, const VaeConfig& cfg)
    : conv_in(p.sub("conv_in"), cfg.latent_channels, cfg.block_out_channels.back(), 3),
      mid_block(p.sub("mid_block"), cfg.block_out_channels.back(), cfg.norm_num_groups,
                cfg.mid_block_add_attention),
      conv_norm_out(p.sub("conv_norm_out"), cfg.block_out_channels.front(), cfg.norm_num_groups),
      conv_out(p.sub("conv_out"), cfg.block_out_channels.front(), cfg.out_channels, 3) {
  const std::size_t n = cfg.block_out_channels.size();
  std::int64_t prev = cfg.block_out_channels.back();
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t out = cfg.block_out_channels[n - 1 - i];
    // The decoder's blocks have one ResNet more than the encoder's.
    up_blocks.emplace_back(p.sub("up_blocks." + std::to_string(i)), prev, out,
                           cfg.layers_per_block + 1, cfg.norm_num_groups, up_block_factor(cfg, i));
    prev = out;
  }
}

std::vector<DecoderStep> Decoder::steps() const {
  using Kind = DecoderStep::Kind;
  std::vector<DecoderStep> out;
  const auto conv_step = [&](Kind kind, const CausalConv3d& c) {
    DecoderStep s;
    s.kind = kind;
    s.conv = &c;
    s.in_channels = c.in_channels;
    s.out_channels = c.out_channels;
    out.push_back(s);
  };
  const auto resnet_step = [&](const ResnetBlock& r) {
    DecoderStep s;
    s.kind = Kind::kResnet;
    s.resnet = &r;
    s.in_channels = r.conv1.in_channels;
    s.out_channels = r.conv2.out_channels;
    out.push_back(s);
  };
  conv_step(Kind::kConvIn, conv_in);
  // diffusers' mid block: resnet, attention(s), resnet.
  resnet_step(mid_block.resnets.at(0));
  for (const FrameCausalAttention& a : mid_block.attentions) {
    DecoderStep s;
    s.kind = Kind::kAttention;
    s.attention = &a;
    s.in_channels = s.out_channels = a.channels;
    out.push_back(s);
  }
  resnet_step(mid_block.resnets.at(1));
  for (const UpBlock& u : up_blocks) {
    for (const ResnetBlock& r : u.resnets) resnet_step(r);
    if (!u.has_upsampler) continue;
    conv_step(Kind::kUpsample, u.upsampler);
    out.back().factor = u.factor;
  }
  conv_step(Kind::kConvOut, conv_out);
  out.back().norm = &conv_norm_out;
  return out;
}

at::Tensor Decoder::forward(const at::Tensor& z) const {
  using Kind = DecoderStep::Kind;
  at::Tensor h = z;
  for (const DecoderStep& s : steps()) {
    switch (s.kind) {
      case Kind::kConvIn:
        h = s.conv->forward(h);
        break;
      case Kind::kResnet:
        h = s.resnet->forward(h);
        break;
      case Kind::kAttention:
        h = s.attention->forward(h);
        break;
      case Kind::kUpsample:
        h = s.conv->forward(upsample_causal(h, s.factor));
        break;
      case Kind::kConvOut:
        h = s.conv->forward(at::silu(s.norm->forward(h)));
        break;
    }
  }
  return h;
}

}  // namespace framesmith::vae_detail
