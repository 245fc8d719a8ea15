#include "models/transformer_blocks.h"

#include <cmath>

#include "models/attention.h"
#include "models/rope.h"

namespace framesmith::transformer {
namespace {

constexpr double kNormEps = 1e-6;  // every LayerNorm / RMSNorm of the model

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight = at::Tensor(),
                      const at::Tensor& bias = at::Tensor()) {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, kNormEps);
}

// FramePack's RMSNorm: statistics in float32, scaled input rounded to the input dtype, then
// multiplied by the weight in that dtype.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) {
  const at::Tensor variance = x.to(at::kFloat).pow(2).mean(-1, true);
  const at::Tensor y = (x * at::rsqrt(variance + kNormEps)).to(x.scalar_type());
  return y * weight.to(x.scalar_type());
}

// [B, S, hidden] -> [B, S, heads, head_dim]
at::Tensor split_heads(const at::Tensor& x, std::int64_t heads) {
  return x.unflatten(2, {heads, x.size(2) / heads});
}

// q/k/v [B, S, heads, D] -> [B, S, heads * D]
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& mask, std::int64_t query_chunk) {
  const at::Tensor o =
      attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), query_chunk, mask);
  return o.transpose(1, 2).flatten(-2);
}

// linear(silu(temb)) split into `n` modulation vectors of shape [B, 1, hidden].
std::vector<at::Tensor> modulations(const Linear& l, const at::Tensor& temb, std::int64_t n) {
  return l(at::silu(temb.unsqueeze(-2))).chunk(n, -1);
}

at::Tensor modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  return layer_norm(x) * (1 + scale) + shift;
}

void bind_rms(const ParamBinder& p, at::Tensor& t, const std::string& name, const Dims& d) {
  p.bind(t, name + ".weight", {d.head_dim}, Init::kOnes);
}

}  // namespace

void bind(const ParamBinder& p, Linear& l, std::int64_t out, std::int64_t in) {
  p.bind(l.weight, "weight", {out, in});
  p.bind(l.bias, "bias", {out}, Init::kZeros);
}

at::Tensor FeedForward::operator()(const at::Tensor& x) const {
  const at::Tensor h = proj(x);
  return out(silu ? at::silu(h) : at::gelu(h, "tanh"));
}

void bind(const ParamBinder& p, FeedForward& f, std::int64_t dim, std::int64_t inner) {
  bind(p.sub("net.0.proj"), f.proj, inner, dim);
  bind(p.sub("net.2"), f.out, dim, inner);
}

at::Tensor timestep_sinusoid(const at::Tensor& t, std::int64_t channels) {
  const std::int64_t half = channels / 2;
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(t.device());
  // Same op order as diffusers' get_timestep_embedding so float32 rounding agrees.
  const at::Tensor exponent = at::arange(0, half, f32) * (-std::log(10000.0)) / half;
  const at::Tensor args = t.to(at::kFloat).unsqueeze(1) * at::exp(exponent).unsqueeze(0);
  return at::cat({args.cos(), args.sin()}, -1);  // flip_sin_to_cos
}

at::Tensor TimestepEmbedder::operator()(const at::Tensor& t, at::ScalarType dtype) const {
  return linear_2(at::silu(linear_1(timestep_sinusoid(t).to(dtype))));
}

void bind(const ParamBinder& p, TimestepEmbedder& e, std::int64_t dim) {
  bind(p.sub("linear_1"), e.linear_1, dim, 256);
  bind(p.sub("linear_2"), e.linear_2, dim, dim);
}

void bind(const ParamBinder& p, DualBlock& b, const Dims& d) {
  const std::int64_t h = d.hidden;
  bind(p.sub("norm1.linear"), b.norm1, 6 * h, h);
  bind(p.sub("norm1_context.linear"), b.norm1_context, 6 * h, h);
  const ParamBinder a = p.sub("attn");
  bind(a.sub("to_q"), b.to_q, h, h);
  bind(a.sub("to_k"), b.to_k, h, h);
  bind(a.sub("to_v"), b.to_v, h, h);
  bind(a.sub("add_q_proj"), b.add_q_proj, h, h);
  bind(a.sub("add_k_proj"), b.add_k_proj, h, h);
  bind(a.sub("add_v_proj"), b.add_v_proj, h, h);
  bind(a.sub("to_out.0"), b.to_out, h, h);
  bind(a.sub("to_add_out"), b.to_add_out, h, h);
  bind_rms(a, b.norm_q, "norm_q", d);
  bind_rms(a, b.norm_k, "norm_k", d);
  bind_rms(a, b.norm_added_q, "norm_added_q", d);
  bind_rms(a, b.norm_added_k, "norm_added_k", d);
  bind(p.sub("ff"), b.ff, h, d.mlp);
  bind(p.sub("ff_context"), b.ff_context, h, d.mlp);
}

at::Tensor modulated_input(const DualBlock& b, const at::Tensor& img, const at::Tensor& temb) {
  const auto m = modulations(b.norm1, temb, 6);
  return modulate(img, m[0], m[1]);
}

std::pair<at::Tensor, at::Tensor> forward(const DualBlock& b, const at::Tensor& img,
                                          const at::Tensor& txt, const at::Tensor& temb,
                                          const BlockContext& ctx) {
  // m: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
  const auto m = modulations(b.norm1, temb, 6);
  const auto c = modulations(b.norm1_context, temb, 6);
  const at::Tensor x = modulate(img, m[0], m[1]);
  const at::Tensor y = modulate(txt, c[0], c[1]);

  // Joint attention over [image, text]; RoPE on the image tokens only.
  const std::int64_t n_img = img.size(1);
  at::Tensor o;
  {
    // q, k and v go once attended (as in the single block).
    const at::Tensor q =
        at::cat({rope::apply(rms_norm(split_heads(b.to_q(x), ctx.heads), b.norm_q), ctx.rope),
                 rms_norm(split_heads(b.add_q_proj(y), ctx.heads), b.norm_added_q)},
                1);
    const at::Tensor k =
        at::cat({rope::apply(rms_norm(split_heads(b.to_k(x), ctx.heads), b.norm_k), ctx.rope),
                 rms_norm(split_heads(b.add_k_proj(y), ctx.heads), b.norm_added_k)},
                1);
    const at::Tensor v =
        at::cat({split_heads(b.to_v(x), ctx.heads), split_heads(b.add_v_proj(y), ctx.heads)}, 1);
    o = attend(q, k, v, ctx.key_mask, ctx.query_chunk);
  }

  at::Tensor img_out = img + b.to_out(o.narrow(1, 0, n_img)) * m[2];
  at::Tensor txt_out = txt + b.to_add_out(o.narrow(1, n_img, o.size(1) - n_img)) * c[2];

  img_out = img_out + m[5] * b.ff(modulate(img_out, m[3], m[4]));
  txt_out = txt_out + c[5] * b.ff_context(modulate(txt_out, c[3], c[4]));
  return {img_out, txt_out};
}

void bind(const ParamBinder& p, SingleBlock& b, const Dims& d) {
  const std::int64_t h = d.hidden;
  bind(p.sub("norm.linear"), b.norm, 3 * h, h);
  const ParamBinder a = p.sub("attn");
  bind(a.sub("to_q"), b.to_q, h, h);
  bind(a.sub("to_k"), b.to_k, h, h);
  bind(a.sub("to_v"), b.to_v, h, h);
  bind_rms(a, b.norm_q, "norm_q", d);
  bind_rms(a, b.norm_k, "norm_k", d);
  bind(p.sub("proj_mlp"), b.proj_mlp, d.mlp, h);
  bind(p.sub("proj_out"), b.proj_out, h, h + d.mlp);
}

std::pair<at::Tensor, at::Tensor> forward(const SingleBlock& b, const at::Tensor& img,
                                          const at::Tensor& txt, const at::Tensor& temb,
                                          const BlockContext& ctx) {
  const std::int64_t n_img = img.size(1);
  const at::Tensor residual = at::cat({img, txt}, 1);
  const auto m = modulations(b.norm, temb, 3);  // shift, scale, gate
  const at::Tensor x = modulate(residual, m[0], m[1]);
  const at::Tensor mlp = at::gelu(b.proj_mlp(x), "tanh");

  const auto rope_img = [&](const at::Tensor& t) {
    return at::cat(
        {rope::apply(t.narrow(1, 0, n_img), ctx.rope), t.narrow(1, n_img, t.size(1) - n_img)}, 1);
  };
  at::Tensor o;
  {
    // q, k and v go once attended: held through the output projection they were 3 of the ~20
    // hidden-sized activations per token at the block's peak (planner.cpp's sampling estimate).
    const at::Tensor q = rope_img(rms_norm(split_heads(b.to_q(x), ctx.heads), b.norm_q));
    const at::Tensor k = rope_img(rms_norm(split_heads(b.to_k(x), ctx.heads), b.norm_k));
    const at::Tensor v = split_heads(b.to_v(x), ctx.heads);
    o = attend(q, k, v, ctx.key_mask, ctx.query_chunk);
  }

  const at::Tensor out = m[2] * b.proj_out(at::cat({o, mlp}, 2)) + residual;
  return {out.narrow(1, 0, n_img), out.narrow(1, n_img, out.size(1) - n_img)};
}

void bind(const ParamBinder& p, RefinerBlock& b, const Dims& d) {
  const std::int64_t h = d.hidden;
  p.bind(b.norm1_weight, "norm1.weight", {h}, Init::kOnes);
  p.bind(b.norm1_bias, "norm1.bias", {h}, Init::kZeros);
  p.bind(b.norm2_weight, "norm2.weight", {h}, Init::kOnes);
  p.bind(b.norm2_bias, "norm2.bias", {h}, Init::kZeros);
  const ParamBinder a = p.sub("attn");
  bind(a.sub("to_q"), b.to_q, h, h);
  bind(a.sub("to_k"), b.to_k, h, h);
  bind(a.sub("to_v"), b.to_v, h, h);
  bind(a.sub("to_out.0"), b.to_out, h, h);
  bind(p.sub("ff"), b.ff, h, d.mlp);
  b.ff.silu = true;
  bind(p.sub("norm_out.linear"), b.norm_out, 2 * h, h);
}

at::Tensor forward(const RefinerBlock& b, const at::Tensor& x, const at::Tensor& temb,
                   const at::Tensor& mask, std::int64_t heads, std::int64_t query_chunk) {
  const at::Tensor n = layer_norm(x, b.norm1_weight, b.norm1_bias);
  const at::Tensor o = attend(split_heads(b.to_q(n), heads), split_heads(b.to_k(n), heads),
                              split_heads(b.to_v(n), heads), mask, query_chunk);
  const auto gates = b.norm_out(at::silu(temb)).unsqueeze(1).chunk(2, -1);  // msa, mlp
  const at::Tensor h = x + b.to_out(o) * gates[0];
  return h + b.ff(layer_norm(h, b.norm2_weight, b.norm2_bias)) * gates[1];
}

void bind(const ParamBinder& p, TokenRefiner& r, const Dims& d, std::int64_t text_dim,
          std::int64_t layers) {
  bind(p.sub("time_text_embed.timestep_embedder"), r.timestep_embedder, d.hidden);
  bind(p.sub("time_text_embed.text_embedder.linear_1"), r.text_embedder.a, d.hidden, text_dim);
  bind(p.sub("time_text_embed.text_embedder.linear_2"), r.text_embedder.b, d.hidden, d.hidden);
  bind(p.sub("proj_in"), r.proj_in, d.hidden, text_dim);
  // The refiner's MLP ratio is the diffusers default 4.0 whatever the main blocks use.
  Dims rd = d;
  rd.mlp = 4 * d.hidden;
  r.blocks.resize(static_cast<std::size_t>(layers));
  for (std::int64_t i = 0; i < layers; ++i)
    bind(p.sub("token_refiner.refiner_blocks." + std::to_string(i)), r.blocks[i], rd);
}

at::Tensor forward(const TokenRefiner& r, const at::Tensor& text, const at::Tensor& timestep,
                   const at::Tensor& mask, std::int64_t heads, std::int64_t query_chunk) {
  const at::ScalarType dtype = text.scalar_type();
  at::Tensor pooled, attn_mask;
  if (mask.defined()) {
    // Mean over the real tokens only.
    const at::Tensor w = mask.to(at::kFloat).unsqueeze(-1);
    pooled = ((text * w).sum(1) / w.sum(1)).to(dtype);
    // Real queries see real keys; padded queries see only the first key (so no row is empty).
    const at::Tensor m = mask.to(at::kBool);
    attn_mask = (m.unsqueeze(1).unsqueeze(2) & m.unsqueeze(1).unsqueeze(3)).clone();
    attn_mask.select(3, 0).fill_(true);
  } else {
    pooled = text.mean(1);
  }
  const at::Tensor temb = r.timestep_embedder(timestep, dtype) + r.text_embedder(pooled);
  at::Tensor h = r.proj_in(text);
  for (const RefinerBlock& b : r.blocks) h = forward(b, h, temb, attn_mask, heads, query_chunk);
  return h;
}

}  // namespace framesmith::transformer
