// Building blocks of the packed HunyuanVideo transformer (FramePack's
// HunyuanVideoTransformer3DModelPacked on diffusers 0.33.1): plain structs of tensors named after
// the checkpoint keys, and free forward functions.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "models/param_binder.h"

namespace framesmith::transformer {

struct Dims {
  std::int64_t heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t hidden = 0;  // heads * head_dim
  std::int64_t mlp = 0;     // int(hidden * mlp_ratio)
};

struct Linear {
  at::Tensor weight, bias;
  at::Tensor operator()(const at::Tensor& x) const { return at::linear(x, weight, bias); }
};
void bind(const ParamBinder& p, Linear& l, std::int64_t out, std::int64_t in);

// diffusers FeedForward: net.0.proj (with the activation), net.2.
struct FeedForward {
  Linear proj, out;
  bool silu = false;  // "linear-silu" (refiner) instead of "gelu-approximate" (tanh GELU)
  at::Tensor operator()(const at::Tensor& x) const;
};
void bind(const ParamBinder& p, FeedForward& f, std::int64_t dim, std::int64_t inner);

// Timesteps(256, flip_sin_to_cos, shift 0) -> TimestepEmbedding (linear_1, SiLU, linear_2).
struct TimestepEmbedder {
  Linear linear_1, linear_2;
  at::Tensor operator()(const at::Tensor& t, at::ScalarType dtype) const;
};
void bind(const ParamBinder& p, TimestepEmbedder& e, std::int64_t dim);
// Sinusoidal embedding [B, 256] (float32) of float timesteps [B], cos half first.
at::Tensor timestep_sinusoid(const at::Tensor& t, std::int64_t channels = 256);

// PixArtAlphaTextProjection / ClipVisionProjection shape: linear, SiLU, linear.
struct MlpProjection {
  Linear a, b;
  at::Tensor operator()(const at::Tensor& x) const { return b(at::silu(a(x))); }
};

// Everything a block needs besides its weights.
struct BlockContext {
  std::int64_t heads = 0;
  std::int64_t query_chunk = 1024;
  at::Tensor rope;      // [B, S_img, 2 * head_dim] cos/sin table of the image tokens
  at::Tensor key_mask;  // [B, 1, 1, S_img + S_txt] bool, or undefined when nothing is padded
};

struct DualBlock {
  Linear norm1, norm1_context;  // AdaLayerNormZero .linear: 6 modulations
  Linear to_q, to_k, to_v, add_q_proj, add_k_proj, add_v_proj, to_out, to_add_out;
  at::Tensor norm_q, norm_k, norm_added_q, norm_added_k;  // RMSNorm over head_dim
  FeedForward ff, ff_context;
};
void bind(const ParamBinder& p, DualBlock& b, const Dims& d);
// (image tokens, text tokens) -> updated pair.
std::pair<at::Tensor, at::Tensor> forward(const DualBlock& b, const at::Tensor& img,
                                          const at::Tensor& txt, const at::Tensor& temb,
                                          const BlockContext& ctx);
// norm1(img, temb)[0]: what TeaCache compares between steps.
at::Tensor modulated_input(const DualBlock& b, const at::Tensor& img, const at::Tensor& temb);

struct SingleBlock {
  Linear norm;  // AdaLayerNormZeroSingle .linear: 3 modulations
  Linear to_q, to_k, to_v;
  at::Tensor norm_q, norm_k;
  Linear proj_mlp, proj_out;
};
void bind(const ParamBinder& p, SingleBlock& b, const Dims& d);
std::pair<at::Tensor, at::Tensor> forward(const SingleBlock& b, const at::Tensor& img,
                                          const at::Tensor& txt, const at::Tensor& temb,
                                          const BlockContext& ctx);

// One block of the token refiner (context_embedder.token_refiner.refiner_blocks.<i>).
struct RefinerBlock {
  at::Tensor norm1_weight, norm1_bias, norm2_weight, norm2_bias;
  Linear to_q, to_k, to_v, to_out;
  FeedForward ff;
  Linear norm_out;  // HunyuanVideoAdaNorm .linear: gate_msa, gate_mlp
};
void bind(const ParamBinder& p, RefinerBlock& b, const Dims& d);
// `mask`: [B, 1, L, L] bool self-attention mask, or undefined.
at::Tensor forward(const RefinerBlock& b, const at::Tensor& x, const at::Tensor& temb,
                   const at::Tensor& mask, std::int64_t heads, std::int64_t query_chunk);

// context_embedder: masked mean pooling, its own timestep/text conditioning, proj_in, refiner.
struct TokenRefiner {
  TimestepEmbedder timestep_embedder;
  MlpProjection text_embedder;
  Linear proj_in;
  std::vector<RefinerBlock> blocks;
};
void bind(const ParamBinder& p, TokenRefiner& r, const Dims& d, std::int64_t text_dim,
          std::int64_t layers);
// text [B, L, text_dim], mask [B, L] bool -> refined tokens [B, L, hidden].
at::Tensor forward(const TokenRefiner& r, const at::Tensor& text, const at::Tensor& timestep,
                   const at::Tensor& mask, std::int64_t heads, std::int64_t query_chunk);

}  // namespace framesmith::transformer
