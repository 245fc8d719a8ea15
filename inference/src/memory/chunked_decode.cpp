#include "memory/chunked_decode.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "framesmith/error.h"
#include "memory/phase.h"
#include "memory/simulated_device.h"
#include "models/attention.h"
#include "models/vae_blocks.h"

namespace framesmith::memory {

using vae_detail::CausalConv3d;
using vae_detail::FrameCausalAttention;
using vae_detail::GroupNorm;
using vae_detail::ResnetBlock;

namespace {

constexpr double kNormEps = 1e-6;  // the VAE's GroupNorm epsilon (vae_blocks.cpp)

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// A small host tensor in double precision (outside the simulated budget).
at::Tensor host_double(const at::Tensor& t) {
  HostScope host;
  return t.to(at::kCPU, at::kDouble);
}

// ---------------------------------------------------------------------------------------------
// GroupNorm statistics over chunks

// Mean and (biased) variance of each (batch, group) over one chunk, and the element count.
struct ChunkMoments {
  at::Tensor mean, var;  // [B, G] double, host
  double count = 0;
};

ChunkMoments moments_of(const at::Tensor& chunk, std::int64_t groups) {
  at::Tensor x = chunk;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) x = x.to(at::kFloat);
  const std::int64_t n = x.size(0);
  ChunkMoments m;
  m.count = static_cast<double>(x.numel() / std::max<std::int64_t>(1, n * groups));
  if (x.is_cuda()) {
    const std::int64_t dims[] = {2};
    const auto vm = at::var_mean(x.reshape({n, groups, -1}), at::IntArrayRef(dims), false, false);
    m.var = host_double(std::get<0>(vm));
    m.mean = host_double(std::get<1>(vm));
    return m;
  }
  // On the CPU, GroupNorm's own statistics kernel (what the whole decode's GroupNorm computes for
  // these values) is 2-3x faster than var_mean's generic Welford reduction, which made the
  // streamed decode ~25 % slower than the whole one; its normalised output, which it writes too,
  // is dropped at once. With eps 0, rstd = 1/sqrt(var).
  x = x.contiguous();
  const std::int64_t c = x.size(1), per_channel = x.numel() / std::max<std::int64_t>(1, n * c);
  const auto stats = at::native_group_norm(x, {}, {}, n, c, per_channel, groups, 0.0);
  m.mean = host_double(std::get<1>(stats)).reshape({n, groups});
  const at::Tensor rstd = host_double(std::get<2>(stats)).reshape({n, groups});
  HostScope host;
  m.var = rstd.pow(-2);  // 0 where a group is constant (rstd = inf)
  return m;
}

// Chan et al.'s pairwise combination of means and sums of squared deviations, in double.
class GroupMoments {
 public:
  void add(const ChunkMoments& c) {
    HostScope host;
    if (count_ == 0) {
      mean_ = c.mean.clone();
      m2_ = c.var * c.count;
      count_ = c.count;
      return;
    }
    const double total = count_ + c.count;
    const at::Tensor delta = c.mean - mean_;
    mean_ = mean_ + delta * (c.count / total);
    m2_ = m2_ + c.var * c.count + delta * delta * (count_ * c.count / total);
    count_ = total;
  }
  bool empty() const { return count_ == 0; }

  // GroupNorm as y = x * scale + shift with per-(batch, channel) scale and shift, as ATen's own
  // kernel applies it: scale = rstd * gamma, shift = beta - mean * scale. Host tensors [B, C, 1, 1,
  // 1] in `dtype`.
  std::pair<at::Tensor, at::Tensor> affine(const GroupNorm& norm, at::ScalarType dtype) const {
    if (count_ == 0) throw Error("streamed VAE decode: GroupNorm statistics missing");
    HostScope host;
    const std::int64_t groups = mean_.size(1), channels = norm.weight.size(0);
    const at::Tensor rstd = at::rsqrt(m2_ / count_ + kNormEps);
    const std::int64_t per_group = channels / groups;
    const at::Tensor gamma = norm.weight.to(at::kCPU, at::kDouble).unsqueeze(0);
    const at::Tensor beta = norm.bias.to(at::kCPU, at::kDouble).unsqueeze(0);
    const at::Tensor scale = rstd.repeat_interleave(per_group, 1) * gamma;
    const at::Tensor shift = beta - mean_.repeat_interleave(per_group, 1) * scale;
    const auto shape = std::vector<std::int64_t>{scale.size(0), channels, 1, 1, 1};
    return {scale.to(dtype).reshape(shape), shift.to(dtype).reshape(shape)};
  }

 private:
  at::Tensor mean_, m2_;
  double count_ = 0;
};

// A stage's output: the host activation and, when a GroupNorm reads it next, its statistics.
struct Activation {
  at::Tensor x;  // host [B, C, T, H, W]
  GroupMoments stats;
};

// ---------------------------------------------------------------------------------------------
// Chunk loop with the OOM ladder

using SlabFn = std::function<void(std::int64_t t0, std::int64_t t1, const DecodeRung& rung,
                                  bool retry, std::vector<ChunkMoments>& moments)>;

// Runs `fn` over frames [0, frames) in slabs of the current rung's size. An out-of-memory error
// in a slab moves ctx to the next rung and runs the same slab again (`retry` set); statistics of
// a slab count only once it succeeded.
void run_slabs(std::int64_t frames, std::int64_t time_scale, DecodeContext& ctx,
               GroupMoments* stats, const SlabFn& fn) {
  if (ctx.rungs.empty()) throw Error("streamed VAE decode: no decode settings (rungs)");
  ctx.rung = std::min(ctx.rung, ctx.rungs.size() - 1);
  std::int64_t t0 = 0;
  while (t0 < frames) {
    const std::size_t first = ctx.rung;
    std::vector<std::string> names;
    for (std::size_t i = first; i < ctx.rungs.size(); ++i) names.push_back(ctx.rungs[i].name());
    const std::string phase = "decode chunk " + std::to_string(++ctx.chunks_done);
    PhaseScope scope(phase);
    std::int64_t t1 = t0;
    std::vector<ChunkMoments> moments;
    const std::size_t used = run_with_oom_ladder(
        phase, names,
        [&](std::size_t k) {
          if (ctx.cancel != nullptr && ctx.cancel->load()) throw Cancelled();
          const DecodeRung& rung = ctx.rungs[first + k];
          t1 = std::min(frames, t0 + std::max<std::int64_t>(1, rung.latent_frames * time_scale));
          moments.clear();
          fn(t0, t1, rung, k > 0, moments);
        },
        ctx.on_event, ctx.hooks);
    ctx.rung = first + used;
    if (stats)
      for (const ChunkMoments& m : moments) stats->add(m);
    t0 = t1;
  }
}

// The mid-block attention's score block at a rung: the context's bound at 16 latent frames, in
// proportion to the chunk below that (the results do not depend on it, only the memory does).
std::int64_t attention_score_elements(const DecodeRung& rung, std::int64_t at_16) {
  const std::int64_t scaled =
      at_16 / 16 * std::max<std::int64_t>(1, std::min<std::int64_t>(16, rung.latent_frames)) /
      std::max<std::int64_t>(1, rung.row_bands);
  return std::max<std::int64_t>(std::int64_t{1} << 12, scaled);
}

// Frames of a stage per latent frame (1, 2, 4): chunk sizes are counted in latent frames.
std::int64_t time_scale_of(std::int64_t stage_frames, std::int64_t latent_frames) {
  if (latent_frames <= 1) return 1;
  return std::max<std::int64_t>(1, (stage_frames - 1) / (latent_frames - 1));
}

// Keeps a slab of an activation that a stage overwrites in place, so that a retried slab starts
// from the original values.
// Only attempts that write in several pieces need it: a convolution's one-band attempt writes its
// slab last, after everything that can run out of memory, so a failed one leaves it untouched.
class SlabBackup {
 public:
  // `retry`: the same slab again after an out-of-memory (else a new slab).
  void before_attempt(const at::Tensor& x, std::int64_t t0, std::int64_t t1, bool retry,
                      bool banded) {
    HostScope host;
    if (retry && saved_.defined()) x.narrow(2, begin_, saved_.size(2)).copy_(saved_);
    if (!banded) {
      saved_ = at::Tensor();
      return;
    }
    if (retry && saved_.defined() && begin_ == t0 && saved_.size(2) == t1 - t0) return;
    begin_ = t0;
    saved_ = x.narrow(2, t0, t1 - t0).clone();
  }

 private:
  std::int64_t begin_ = 0;
  at::Tensor saved_;
};

// ---------------------------------------------------------------------------------------------
// Stages

// Upsampled coordinate -> source coordinate. Time: the first frame stands alone (UpBlock), and a
// negative coordinate is the causal replicate padding of frame 0. Space: replicate padding clamps.
std::int64_t source_frame(std::int64_t u, std::int64_t ft) {
  return u <= 0 ? 0 : (u - 1) / ft + 1;
}
std::int64_t source_row(std::int64_t u, std::int64_t size_up, std::int64_t f) {
  return std::clamp<std::int64_t>(u, 0, size_up - 1) / f;
}

struct ConvArgs {
  const Activation* input = nullptr;
  const CausalConv3d* conv = nullptr;
  const GroupNorm* norm = nullptr;          // prelude: GroupNorm (input statistics) + SiLU
  const at::Tensor* pointwise_w = nullptr;  // prelude: a 1x1x1 convolution (post_quant_conv)
  const at::Tensor* pointwise_b = nullptr;
  std::array<std::int64_t, 3> up{1, 1, 1};  // nearest upsampling before the convolution
  Activation* residual = nullptr;           // added after the convolution
  const CausalConv3d* shortcut = nullptr;   // ... through this 1x1x1 convolution
  bool stats = true;                        // accumulate the output's GroupNorm statistics
};

class StageRunner {
 public:
  StageRunner(DecodeContext& ctx, std::int64_t latent_frames, std::int64_t groups)
      : ctx_(ctx), latent_frames_(latent_frames), groups_(groups) {}

  Activation conv(const ConvArgs& a) {
    const at::Tensor& in = a.input->x;
    const std::int64_t b = in.size(0), t_in = in.size(2), h_in = in.size(3), w_in = in.size(4);
    const auto [ft, fh, fw] = a.up;
    const std::int64_t t_out = 1 + ft * (t_in - 1), h_out = h_in * fh, w_out = w_in * fw;
    const std::int64_t c_out = a.conv->weight.size(0);
    // In place over the residual when shapes agree: the residual slab is read before it is
    // written, and nothing else reads it afterwards.
    const bool in_place = a.residual != nullptr && a.shortcut == nullptr;
    Activation out;
    out.x = in_place ? a.residual->x
                     : ctx_.device.empty_host({b, c_out, t_out, h_out, w_out}, in.scalar_type());
    at::Tensor scale, shift;
    if (a.norm) std::tie(scale, shift) = a.input->stats.affine(*a.norm, in.scalar_type());
    SlabBackup backup;
    run_slabs(t_out, time_scale_of(t_out, latent_frames_), ctx_, a.stats ? &out.stats : nullptr,
              [&](std::int64_t t0, std::int64_t t1, const DecodeRung& rung, bool retry,
                  std::vector<ChunkMoments>& moments) {
                if (in_place) backup.before_attempt(out.x, t0, t1, retry, rung.row_bands > 1);
                const std::int64_t rows =
                    ceil_div(h_out, std::max<std::int64_t>(1, rung.row_bands));
                for (std::int64_t r0 = 0; r0 < h_out; r0 += rows) {
                  const std::int64_t r1 = std::min(h_out, r0 + rows);
                  DeviceWork work(ctx_.device);
                  at::Tensor y = conv_chunk(a, scale, shift, t0, t1, r0, r1);
                  if (a.residual) {
                    at::Tensor res = ctx_.device.to_device(
                        a.residual->x.narrow(2, t0, t1 - t0).narrow(3, r0, r1 - r0));
                    if (a.shortcut) res = at::conv3d(res, a.shortcut->weight, a.shortcut->bias);
                    y = y + res;
                  }
                  if (a.stats) moments.push_back(moments_of(y, groups_));
                  out.x.narrow(2, t0, t1 - t0).narrow(3, r0, r1 - r0).copy_(y);
                }
              });
    return out;
  }

  // FrameCausalAttention in place over `x`: keys and values of every frame first, then each
  // chunk of query frames attends to the keys of its own and earlier frames.
  void attention(Activation& x, const FrameCausalAttention& att) {
    const at::Tensor& in = x.x;
    const std::int64_t b = in.size(0), c = in.size(1), t = in.size(2), h = in.size(3),
                       w = in.size(4), hw = h * w;
    at::Tensor scale, shift;
    std::tie(scale, shift) = x.stats.affine(att.group_norm, in.scalar_type());
    const at::Tensor keys = ctx_.device.empty_host({b, t, h, w, c}, in.scalar_type());
    const at::Tensor values = ctx_.device.empty_host({b, t, h, w, c}, in.scalar_type());
    const auto tokens_of = [&](const at::Tensor& chunk) {  // [B, C, t, r, W] -> [B, t, r, W, C]
      return chunk.permute({0, 2, 3, 4, 1});
    };
    run_slabs(t, 1, ctx_, nullptr,
              [&](std::int64_t t0, std::int64_t t1, const DecodeRung& rung, bool,
                  std::vector<ChunkMoments>&) {
                const std::int64_t rows = ceil_div(h, std::max<std::int64_t>(1, rung.row_bands));
                for (std::int64_t r0 = 0; r0 < h; r0 += rows) {
                  const std::int64_t r1 = std::min(h, r0 + rows);
                  DeviceWork work(ctx_.device);
                  const at::Tensor chunk =
                      ctx_.device.to_device(in.narrow(2, t0, t1 - t0).narrow(3, r0, r1 - r0));
                  const at::Tensor normed = tokens_of(chunk * ctx_.device.to_device(scale) +
                                                      ctx_.device.to_device(shift));
                  keys.narrow(1, t0, t1 - t0)
                      .narrow(2, r0, r1 - r0)
                      .copy_(at::linear(normed, att.to_k_w, att.to_k_b));
                  values.narrow(1, t0, t1 - t0)
                      .narrow(2, r0, r1 - r0)
                      .copy_(at::linear(normed, att.to_v_w, att.to_v_b));
                }
              });
    const at::Tensor key_tokens = keys.view({b, t * hw, c});
    const at::Tensor value_tokens = values.view({b, t * hw, c});
    GroupMoments out_stats;
    SlabBackup backup;
    run_slabs(
        t, 1, ctx_, &out_stats,
        [&](std::int64_t t0, std::int64_t t1, const DecodeRung& rung, bool retry,
            std::vector<ChunkMoments>& moments) {
          backup.before_attempt(in, t0, t1, retry, /*banded=*/true);  // written frame by frame
          const std::int64_t rows = ceil_div(h, std::max<std::int64_t>(1, rung.row_bands));
          DeviceWork work(ctx_.device);
          // The keys and values every frame of the slab may see, on the device once.
          const at::Tensor k_all =
              ctx_.device.to_device(key_tokens.narrow(1, 0, t1 * hw)).unsqueeze(1);
          const at::Tensor v_all =
              ctx_.device.to_device(value_tokens.narrow(1, 0, t1 * hw)).unsqueeze(1);
          const at::Tensor scale_d = ctx_.device.to_device(scale);
          const at::Tensor shift_d = ctx_.device.to_device(shift);
          const std::int64_t budget = score_elements(rung);
          for (std::int64_t f = t0; f < t1; ++f) {
            const std::int64_t n_keys = (f + 1) * hw;
            const std::int64_t q_chunk = std::max<std::int64_t>(1, budget / (b * n_keys));
            for (std::int64_t r0 = 0; r0 < h; r0 += rows) {
              const std::int64_t r1 = std::min(h, r0 + rows), n = (r1 - r0) * w;
              const at::Tensor chunk =
                  ctx_.device.to_device(in.narrow(2, f, 1).narrow(3, r0, r1 - r0));
              const at::Tensor tokens = tokens_of(chunk).reshape({b, n, c});
              const at::Tensor normed = tokens_of(chunk * scale_d + shift_d).reshape({b, n, c});
              const at::Tensor q = at::linear(normed, att.to_q_w, att.to_q_b).unsqueeze(1);
              const at::Tensor attended = framesmith::attention(
                  q, k_all.narrow(2, 0, n_keys), v_all.narrow(2, 0, n_keys), q_chunk);
              const at::Tensor out =
                  at::linear(attended.squeeze(1), att.to_out_w, att.to_out_b) + tokens;
              const at::Tensor y = out.reshape({b, 1, r1 - r0, w, c}).permute({0, 4, 1, 2, 3});
              moments.push_back(moments_of(y.contiguous(), groups_));
              in.narrow(2, f, 1).narrow(3, r0, r1 - r0).copy_(y);
            }
          }
        });
    x.stats = std::move(out_stats);
  }

 private:
  std::int64_t score_elements(const DecodeRung& rung) const {
    return attention_score_elements(rung, ctx_.attention_score_elements);
  }

  // Output frames [t0, t1) x rows [r0, r1) (all columns) of the stage, on the device.
  at::Tensor conv_chunk(const ConvArgs& a, const at::Tensor& scale, const at::Tensor& shift,
                        std::int64_t t0, std::int64_t t1, std::int64_t r0, std::int64_t r1) {
    const at::Tensor& in = a.input->x;
    const std::int64_t h_in = in.size(3), w_in = in.size(4);
    const auto [ft, fh, fw] = a.up;
    const std::int64_t k = a.conv->kernel, p = k / 2;
    const std::int64_t h_up = h_in * fh, w_up = w_in * fw;
    // Source coordinates of every (padded, upsampled) input position the outputs read.
    std::vector<std::int64_t> ti, ri, ci;
    for (std::int64_t u = t0 - (k - 1); u < t1; ++u) ti.push_back(source_frame(u, ft));
    for (std::int64_t u = r0 - p; u < r1 + p; ++u) ri.push_back(source_row(u, h_up, fh));
    for (std::int64_t u = -p; u < w_up + p; ++u) ci.push_back(source_row(u, w_up, fw));
    const std::int64_t tmin = ti.front(), tmax = ti.back(), rmin = ri.front(), rmax = ri.back();
    at::Tensor x =
        ctx_.device.to_device(in.narrow(2, tmin, tmax - tmin + 1).narrow(3, rmin, rmax - rmin + 1));
    if (a.norm) {
      x = x * ctx_.device.to_device(scale);
      x.add_(ctx_.device.to_device(shift));
      at::silu_(x);
    } else if (a.pointwise_w) {
      x = at::conv3d(x, *a.pointwise_w, *a.pointwise_b);
    }
    if (ft == 1 && fh == 1 && fw == 1) {
      // Without upsampling the three gathers are a replicate padding at the true borders (time:
      // causal, in front only): one copy instead of three.
      const std::int64_t front = std::max<std::int64_t>(0, (k - 1) - t0);
      const std::int64_t top = std::max<std::int64_t>(0, p - r0);
      const std::int64_t bottom = std::max<std::int64_t>(0, r1 + p - h_in);
      if (front + top + bottom + p > 0) x = at::replication_pad3d(x, {p, p, top, bottom, front, 0});
    } else {
      x = gather(x, 2, ti, tmin);
      x = gather(x, 3, ri, rmin);
      x = gather(x, 4, ci, 0);
    }
    return at::conv3d(x, a.conv->weight, a.conv->bias, a.conv->stride);
  }

  // x.index_select(dim, idx - offset), skipped when that is x itself.
  at::Tensor gather(const at::Tensor& x, std::int64_t dim, const std::vector<std::int64_t>& idx,
                    std::int64_t offset) {
    bool identity = static_cast<std::int64_t>(idx.size()) == x.size(dim);
    for (std::size_t i = 0; identity && i < idx.size(); ++i)
      identity = idx[i] - offset == static_cast<std::int64_t>(i);
    if (identity) return x;
    at::Tensor index;
    {
      HostScope host;
      index = at::empty({static_cast<std::int64_t>(idx.size())}, at::kLong);
      auto* p = index.data_ptr<std::int64_t>();
      for (std::size_t i = 0; i < idx.size(); ++i) p[i] = idx[i] - offset;
    }
    return x.index_select(dim, ctx_.device.to_device(index));
  }

  DecodeContext& ctx_;
  std::int64_t latent_frames_;
  std::int64_t groups_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Rungs

std::string DecodeRung::name() const {
  std::string s = "chunk " + std::to_string(latent_frames);
  if (row_bands > 1) s += " in " + std::to_string(row_bands) + " bands";
  return s;
}

std::vector<DecodeRung> default_decode_ladder() {
  return {{16, 1}, {8, 1}, {4, 1}, {2, 1}, {1, 1}, {1, 2}, {1, 4}, {1, 8}, {1, 16}};
}

// ---------------------------------------------------------------------------------------------
// StreamedVaeDecoder

struct StreamedVaeDecoder::Impl {
  std::unique_ptr<vae_detail::Decoder> decoder;
  at::Tensor post_quant_w, post_quant_b;
  std::vector<at::Tensor*> tensors;  // every weight, for load/unload
  std::vector<at::Tensor> host;      // their host versions

  void collect(GroupNorm& n) {
    tensors.push_back(&n.weight);
    tensors.push_back(&n.bias);
  }
  void collect(CausalConv3d& c) {
    tensors.push_back(&c.weight);
    tensors.push_back(&c.bias);
  }
  void collect(ResnetBlock& r) {
    collect(r.norm1);
    collect(r.norm2);
    collect(r.conv1);
    collect(r.conv2);
    if (r.has_shortcut) collect(r.conv_shortcut);
  }
  void collect(FrameCausalAttention& a) {
    collect(a.group_norm);
    for (at::Tensor* t : {&a.to_q_w, &a.to_q_b, &a.to_k_w, &a.to_k_b, &a.to_v_w, &a.to_v_b,
                          &a.to_out_w, &a.to_out_b})
      tensors.push_back(t);
  }
  // The step's layers are the decoder's own (Impl owns it): load() swaps their tensors.
  void collect(const vae_detail::DecoderStep& step) {
    if (step.conv) collect(const_cast<CausalConv3d&>(*step.conv));
    if (step.norm) collect(const_cast<GroupNorm&>(*step.norm));
    if (step.resnet) collect(const_cast<ResnetBlock&>(*step.resnet));
    if (step.attention) collect(const_cast<FrameCausalAttention&>(*step.attention));
  }
};

StreamedVaeDecoder::StreamedVaeDecoder(const VaeConfig& cfg, const Weights& vae_weights)
    : cfg_(cfg), dtype_(vae_weights.dtype()), impl_(std::make_unique<Impl>()) {
  if (!vae_weights.device().is_cpu())
    throw Error("streamed VAE decoder: weights must be on the host (they are streamed)");
  cfg_.validate();
  const vae_detail::ParamSource p(&vae_weights);
  impl_->decoder = std::make_unique<vae_detail::Decoder>(p.sub("decoder"), cfg_);
  const std::int64_t l = cfg_.latent_channels;
  impl_->post_quant_w = vae_weights.get("post_quant_conv.weight", {l, l, 1, 1, 1});
  impl_->post_quant_b = vae_weights.get("post_quant_conv.bias", {l});
  for (const vae_detail::DecoderStep& step : impl_->decoder->steps()) impl_->collect(step);
  impl_->tensors.push_back(&impl_->post_quant_w);
  impl_->tensors.push_back(&impl_->post_quant_b);
  for (at::Tensor* t : impl_->tensors) impl_->host.push_back(*t);
}

StreamedVaeDecoder::~StreamedVaeDecoder() {
  unload();
}

void StreamedVaeDecoder::load(const ComputeDevice& device) {
  unload();
  std::vector<at::Tensor> copies;
  for (const at::Tensor& h : impl_->host) copies.push_back(device.to_device(h));
  for (std::size_t i = 0; i < copies.size(); ++i) *impl_->tensors[i] = copies[i];
  loaded_ = true;
}

void StreamedVaeDecoder::unload() {
  if (!impl_) return;
  for (std::size_t i = 0; i < impl_->tensors.size(); ++i) *impl_->tensors[i] = impl_->host[i];
  loaded_ = false;
}

std::int64_t StreamedVaeDecoder::weight_bytes() const {
  std::int64_t n = 0;
  for (const at::Tensor& t : impl_->host) n += tensor_bytes(t);
  return n;
}

at::Tensor StreamedVaeDecoder::decode_tile(const at::Tensor& z_in, DecodeContext& ctx) const {
  if (!z_in.defined() || z_in.dim() != 5 || z_in.size(1) != cfg_.latent_channels ||
      z_in.numel() == 0) {
    std::ostringstream o;
    o << "streamed VAE decode: latents have shape "
      << (z_in.defined() ? z_in.sizes() : at::IntArrayRef{}) << ", expected [B, "
      << cfg_.latent_channels << ", T, h, w]";
    throw Error(o.str());
  }
  if (ctx.device.has_device_memory() && !loaded_)
    throw Error("streamed VAE decode: the decoder weights are not on the device");
  Activation z;
  {
    HostScope host;
    z.x = z_in.to(at::kCPU, dtype_).contiguous();  // read only: never written
  }
  StageRunner run(ctx, z.x.size(2), cfg_.norm_num_groups);
  const auto resnet = [&](Activation x, const ResnetBlock& r) {
    ConvArgs a;
    a.input = &x;
    a.conv = &r.conv1;
    a.norm = &r.norm1;
    const Activation mid = run.conv(a);
    ConvArgs b;
    b.input = &mid;
    b.conv = &r.conv2;
    b.norm = &r.norm2;
    b.residual = &x;
    b.shortcut = r.has_shortcut ? &r.conv_shortcut : nullptr;
    return run.conv(b);
  };
  // The decoder's own steps (vae_blocks.h), each as stages over host activations.
  using Kind = vae_detail::DecoderStep::Kind;
  Activation h;
  for (const vae_detail::DecoderStep& step : impl_->decoder->steps()) {
    ConvArgs a;
    a.conv = step.conv;
    switch (step.kind) {
      case Kind::kConvIn:
        a.input = &z;
        a.pointwise_w = &impl_->post_quant_w;
        a.pointwise_b = &impl_->post_quant_b;
        h = run.conv(a);
        z.x = at::Tensor();
        break;
      case Kind::kResnet:
        h = resnet(std::move(h), *step.resnet);
        break;
      case Kind::kAttention:
        run.attention(h, *step.attention);
        break;
      case Kind::kUpsample:
        a.input = &h;
        a.up = step.factor;
        h = run.conv(a);
        break;
      case Kind::kConvOut:
        a.input = &h;
        a.norm = step.norm;
        a.stats = false;
        h = run.conv(a);
        break;
    }
  }
  return h.x;
}

at::Tensor StreamedVaeDecoder::decode(const at::Tensor& z, const VaeTiling& tiling,
                                      DecodeContext& ctx) const {
  if (tiling.spatial)
    throw Error(
        "streamed VAE decode: diffusers' spatial tiling is not offered (row bands replace it "
        "exactly); decode with tiling.spatial = false");
  const std::int64_t tr = cfg_.temporal_compression_ratio;
  if (!tiling.temporal || !z.defined() || z.dim() != 5 ||
      z.size(2) <= tiling.tile_sample_min_num_frames / tr)
    return decode_tile(z, ctx);
  VaeTemporalAssembler join(
      tiling.tile_sample_min_num_frames - tiling.tile_sample_stride_num_frames,
      tiling.tile_sample_stride_num_frames, (z.size(2) - 1) * tr + 1);
  for (const VaeTemporalTile& t : vae_decode_tiles(z.size(2), tiling, tr)) {
    at::Tensor tile = decode_tile(z.narrow(2, t.begin, t.end - t.begin), ctx);
    HostScope host;
    join.add(std::move(tile));
  }
  HostScope host;
  return join.finish();
}

// ---------------------------------------------------------------------------------------------
// Estimates

namespace {

struct Geometry {
  std::int64_t c, t, h, w;
};

// Scratch memory of one conv3d call (elements). LibTorch's CPU convolution (1.13 and 2.x) takes
// oneDNN for float inputs with N*C*D*H > 20480 (a reordered copy of the input) and otherwise its
// native vol2col path, whose column buffer is C * k^3 times the output positions (per sample);
// cuDNN's workspace is assumed to be of the order of the input (the measured profile corrects it).
std::int64_t conv_workspace_elements(std::int64_t input, std::int64_t c_in, std::int64_t t_in,
                                     std::int64_t h_in, std::int64_t out_positions,
                                     std::int64_t kernel, const DecodeShape& s) {
  if (!s.cpu_convolution) return input;
  const bool onednn = s.element_bytes == 4 && s.batch * c_in * t_in * h_in > 20480;
  if (onednn) return input;
  return c_in * kernel * kernel * kernel * out_positions;
}

// Device elements one chunk of a convolution stage holds at its peak (see StageRunner::conv).
std::int64_t conv_chunk_elements(const Geometry& in, std::int64_t c_out, std::int64_t kernel,
                                 std::array<std::int64_t, 3> up, std::int64_t t_chunk,
                                 std::int64_t row_bands, bool residual, bool shortcut,
                                 std::int64_t c_res, const DecodeShape& s) {
  const auto [ft, fh, fw] = up;
  const std::int64_t t_out = 1 + ft * (in.t - 1), h_out = in.h * fh, w_out = in.w * fw;
  const std::int64_t t = std::min(t_out, t_chunk);
  const std::int64_t r = ceil_div(h_out, row_bands);
  const std::int64_t p = kernel / 2;
  const std::int64_t tu = t + kernel - 1, ru = r + 2 * p, wu = w_out + 2 * p;
  const std::int64_t ts = std::min(in.t, ceil_div(tu, ft) + 1);
  const std::int64_t rs = std::min(in.h, ceil_div(ru, fh) + 1);
  const std::int64_t raw = in.c * ts * rs * in.w;
  const std::int64_t g1 = in.c * tu * rs * in.w, g2 = in.c * tu * ru * in.w;
  const std::int64_t g3 = in.c * tu * ru * wu;
  const std::int64_t out = c_out * t * r * w_out;
  const std::int64_t conv =
      g3 + conv_workspace_elements(g3, in.c, tu, ru, t * r * w_out, kernel, s) + out;
  const std::int64_t res = residual ? (shortcut ? c_res * t * r * w_out + out : out) + out : 0;
  return std::max({2 * raw, raw + g1, g1 + g2, g2 + g3, conv, res + out});
}

std::int64_t attention_elements(const Geometry& g, std::int64_t t_chunk, std::int64_t row_bands,
                                std::int64_t score_elements) {
  const std::int64_t hw = g.h * g.w, t1 = std::min(g.t, t_chunk);
  const std::int64_t kv = 2 * g.c * g.t * hw;  // the last slab sees every key and value
  const std::int64_t q = g.c * ceil_div(g.h, row_bands) * g.w;
  const std::int64_t kv_pass = 4 * g.c * t1 * ceil_div(g.h, row_bands) * g.w;
  return std::max(kv_pass, kv + 6 * q + score_elements);
}

}  // namespace

std::int64_t estimate_decode_tile_peak(const VaeConfig& cfg, const DecodeShape& s,
                                       const DecodeRung& rung) {
  const std::int64_t latent_t = s.latent_frames;
  const std::int64_t bands = std::max<std::int64_t>(1, rung.row_bands);
  std::int64_t peak = 0;
  const auto chunk_frames = [&](std::int64_t stage_frames) {
    return std::max<std::int64_t>(1, rung.latent_frames * time_scale_of(stage_frames, latent_t));
  };
  Geometry g{cfg.latent_channels, latent_t, s.latent_height, s.latent_width};
  const auto conv = [&](std::int64_t c_out, std::int64_t k, std::array<std::int64_t, 3> up,
                        bool residual, bool shortcut, std::int64_t c_res) {
    const std::int64_t t_out = 1 + up[0] * (g.t - 1);
    peak = std::max(peak, conv_chunk_elements(g, c_out, k, up, chunk_frames(t_out), bands, residual,
                                              shortcut, c_res, s));
    g = {c_out, t_out, g.h * up[1], g.w * up[2]};
  };
  // The decoder's steps as the streamed decode runs them (decode_tile), read from the structure a
  // weightless decoder of this config has.
  std::vector<ParamSpec> specs;
  const vae_detail::Decoder decoder(vae_detail::ParamSource(&specs), cfg);
  using Kind = vae_detail::DecoderStep::Kind;
  for (const vae_detail::DecoderStep& step : decoder.steps()) {
    switch (step.kind) {
      case Kind::kConvIn:
      case Kind::kConvOut:
      case Kind::kUpsample:
        conv(step.out_channels, step.conv->kernel, step.factor, false, false, 0);
        break;
      case Kind::kResnet:
        conv(step.out_channels, step.resnet->conv1.kernel, {1, 1, 1}, false, false, 0);
        conv(step.out_channels, step.resnet->conv2.kernel, {1, 1, 1}, true,
             step.resnet->has_shortcut, step.in_channels);
        break;
      case Kind::kAttention: {
        const std::int64_t scores =
            attention_score_elements(rung, DecodeContext().attention_score_elements);
        peak = std::max(peak, attention_elements(g, chunk_frames(g.t), bands, scores));
        break;
      }
    }
  }
  return s.batch * peak * s.element_bytes;
}

std::int64_t estimate_decode_peak(const VaeConfig& cfg, const DecodeShape& shape,
                                  const DecodeRung& rung, bool temporal_tiles) {
  VaeTiling tiling;
  tiling.temporal = temporal_tiles;
  std::int64_t peak = 0;
  for (const VaeTemporalTile& t :
       vae_decode_tiles(shape.latent_frames, tiling, cfg.temporal_compression_ratio)) {
    DecodeShape s = shape;
    s.latent_frames = t.end - t.begin;
    peak = std::max(peak, estimate_decode_tile_peak(cfg, s, rung));
  }
  return peak;
}

std::int64_t estimate_decode_host_bytes(const VaeConfig& cfg, const DecodeShape& shape,
                                        bool temporal_tiles) {
  VaeTiling tiling;
  tiling.temporal = temporal_tiles;
  std::int64_t frames = 0;
  for (const VaeTemporalTile& t :
       vae_decode_tiles(shape.latent_frames, tiling, cfg.temporal_compression_ratio))
    frames = std::max(frames, t.end - t.begin);
  // The largest stages run at full resolution with the first block's channels: a resnet there
  // holds its input and its middle activation; the output pixels come on top.
  const std::int64_t pixel_frames = 1 + cfg.temporal_compression_ratio * (frames - 1);
  const std::int64_t positions = pixel_frames * shape.latent_height * shape.latent_width *
                                 cfg.spatial_compression_ratio * cfg.spatial_compression_ratio;
  const std::int64_t c = cfg.block_out_channels.front();
  return shape.batch * positions * (2 * c + cfg.out_channels) * shape.element_bytes;
}

std::int64_t decoder_weight_bytes(const VaeConfig& cfg, at::ScalarType dtype) {
  std::int64_t n = 0;
  for (const ParamSpec& p : vae_parameter_specs(cfg)) {
    if (p.name.rfind("decoder.", 0) != 0 && p.name.rfind("post_quant_conv.", 0) != 0) continue;
    std::int64_t e = 1;
    for (std::int64_t d : p.shape) e *= d;
    n += e;
  }
  return n * static_cast<std::int64_t>(c10::elementSize(dtype));
}

}  // namespace framesmith::memory
