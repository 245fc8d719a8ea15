// LoRA files as people have them, mapped onto the packed transformer's parameter names.
//
// Three key layouts are read (FramePack-Studio's loaders, musubi-tuner's and diffusers' own
// converter read the same ones):
//   diffusers / PEFT  `transformer.<module>.lora_A.weight` / `.lora_B.weight` (prefix optional)
//   kohya / musubi    `lora_unet_<module path with _>.lora_down.weight` / `.lora_up.weight` /
//                     `.alpha`
//   HunyuanVideo      `diffusion_model.double_blocks.N.img_attn_qkv.lora_A.weight` ... (the
//                     original model's names; fused q/k/v and single-block linear1 are split
//                     by rows onto the packed model's separate projections, A shared)
// Each matched module gets factors (down [rank, in], up [out, rank], scale); its weight becomes
// W + scale · up · down when it is converted to its compute form (models/weight_form.h): once at
// load for weights loaded at load, at each placement for weights converted at use. Nothing
// holds a merged copy of the model.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framesmith/lora_files.h"
#include "framesmith/pipeline.h"
#include "io/safetensors.h"
#include "models/weight_form.h"

namespace framesmith {

// Weight key (e.g. "transformer_blocks.0.attn.to_q.weight") → its factors, in load order.
using LoraPatch = std::map<std::string, std::vector<LoraFactor>>;

struct LoraFileReport {
  std::string path;
  double strength = 1.0;
  LoraLayout layout = LoraLayout::kDiffusers;
  int rank = 0;                        // the largest rank in the file
  int modules = 0;                     // LoRA modules in the file
  int weights = 0;                     // base weights they change (fused q/k/v counts three)
  std::vector<std::string> unmatched;  // module names the model lacks (ignored when few)
};

struct LoraOptions {
  // kohya's `alpha` scales by alpha / rank. FramePack-Studio's diffusers loader ignores it
  // (PEFT with network_alphas=None): false reproduces that loader.
  bool use_alpha = true;
  // A file may name at most this share of its modules that the model lacks (a LoRA trained on a
  // slightly different model); more is an error listing them: a LoRA for another model must
  // not silently do nothing.
  double max_unmatched_share = 0.05;
};

// Reads every file of `loras` (in order; the same module changed by several adds up) and maps it
// onto `base`, the transformer's checkpoint. Throws Error before anything is applied for: a
// damaged or truncated file, a layout it cannot read, unmatched modules above the threshold,
// a rank or shape mismatch, NaN or infinite values, a strength that is not finite or beyond
// ±kMaxLoraStrength (framesmith/lora_files.h).
LoraPatch build_lora_patch(const std::vector<LoraSpec>& loras, const io::TensorStore& base,
                           std::vector<LoraFileReport>* reports = nullptr,
                           const LoraOptions& options = {});

}  // namespace framesmith
