// The parameters of the whole packed transformer, bound in one place (load, specs, block refs).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "models/transformer_blocks.h"
#include "models/transformer_packed.h"

namespace framesmith::transformer {

// Channels of FramePack's clean-latent embedders: fixed at 16 in its code, whatever in_channels.
constexpr std::int64_t kCleanLatentChannels = 16;

// A Conv3d with kernel == stride, applied as patchify + matmul (exact; works for every dtype).
struct PatchEmbed {
  at::Tensor weight, bias;  // [inner, C, kt, kh, kw], [inner]
  std::array<std::int64_t, 3> kernel = {1, 1, 1};
  // x [B, C, T, H, W] -> tokens [B, T'*H'*W', inner]; trailing partial patches are dropped.
  at::Tensor operator()(const at::Tensor& x) const;
};

struct PackedParams {
  PatchEmbed x_embedder;
  PatchEmbed clean_1x, clean_2x, clean_4x;  // only with has_clean_x_embedder
  TokenRefiner context_embedder;
  TimestepEmbedder timestep_embedder, guidance_embedder;
  MlpProjection text_embedder;     // pooled CLIP projection
  MlpProjection image_projection;  // up, down; only with has_image_proj
  std::vector<DualBlock> dual;
  std::vector<SingleBlock> single;
  Linear norm_out, proj_out;
};

std::vector<ModuleRef> module_list(const TransformerConfig& cfg);

Dims dims_of(const TransformerConfig& cfg);
// `p` is the model's root binder; m.dual and m.single must have their final sizes.
void bind_module(const ParamBinder& p, PackedParams& m, const TransformerConfig& cfg,
                 const ModuleRef& r);
void bind(const ParamBinder& p, PackedParams& m, const TransformerConfig& cfg);

}  // namespace framesmith::transformer
