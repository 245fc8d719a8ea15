// FramePack's packed HunyuanVideo transformer (HunyuanVideoTransformer3DModelPacked): the
// HunyuanVideo DiT (dual-stream then single-stream blocks, token refiner, guidance embedding)
// plus FramePack's additions: explicit frame indices for RoPE, clean-latent context at 1x/2x/4x
// compression, a SigLIP image projection, and TeaCache.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/lora.h"
#include "models/magcache.h"
#include "models/weights.h"

namespace framesmith {

namespace transformer {
// The model's weights as modules, in checkpoint order, which is also the order the forward uses
// them in: the unit FramePack moves to the device ("preserved memory" loading) and streams.
enum class ModuleKind {
  kXEmbedder,
  kCleanXEmbedder,   // proj, proj_2x, proj_4x
  kContextEmbedder,  // the token refiner
  kTimeTextEmbed,    // timestep, guidance and pooled-text embedders
  kImageProjection,
  kDualBlock,
  kSingleBlock,
  kNormOut,
  kProjOut,
};
struct ModuleRef {
  ModuleKind kind;
  int index = 0;     // the block's index among its kind's blocks
  std::string name;  // checkpoint prefix: "x_embedder", "transformer_blocks.3", ...
};
}  // namespace transformer

// The fields of the transformer's config.json; defaults are those of FramePack's class.
struct TransformerConfig {
  std::int64_t in_channels = 16;
  std::int64_t out_channels = 16;
  std::int64_t num_attention_heads = 24;
  std::int64_t attention_head_dim = 128;
  std::int64_t num_layers = 20;         // dual-stream blocks
  std::int64_t num_single_layers = 40;  // single-stream blocks
  std::int64_t num_refiner_layers = 2;
  double mlp_ratio = 4.0;
  std::int64_t patch_size = 2;
  std::int64_t patch_size_t = 1;
  std::string qk_norm = "rms_norm";  // the only kind FramePack checkpoints use
  bool guidance_embeds = true;
  std::int64_t text_embed_dim = 4096;
  std::int64_t pooled_projection_dim = 768;
  double rope_theta = 256.0;
  std::array<std::int64_t, 3> rope_axes_dim = {16, 56, 56};  // (frames, rows, columns)
  bool has_image_proj = false;
  std::int64_t image_proj_dim = 1152;
  bool has_clean_x_embedder = false;

  std::int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  std::int64_t mlp_dim() const { return static_cast<std::int64_t>(inner_dim() * mlp_ratio); }

  static TransformerConfig from_json(const nlohmann::json& j);  // validates; Error on bad values
  nlohmann::json to_json() const;
};

// Every checkpoint key with its shape (norm weights initialise to ones, biases to zeros).
std::vector<ParamSpec> transformer_parameter_specs(const TransformerConfig& cfg);

struct TransformerInputs {
  at::Tensor hidden_states;           // [B, C, T, H, W]
  at::Tensor timestep;                // [B] float, 0..1000
  at::Tensor encoder_hidden_states;   // [B, L, text_dim]
  at::Tensor encoder_attention_mask;  // [B, L]
  at::Tensor pooled_projections;      // [B, pooled_dim]
  at::Tensor guidance;                // [B] (= distilled gs*1000); undefined if !guidance_embeds
  at::Tensor latent_indices;          // [B, T]
  at::Tensor clean_latents, clean_latent_indices;        // optional (undefined = absent)
  at::Tensor clean_latents_2x, clean_latent_indices_2x;  // optional
  at::Tensor clean_latents_4x, clean_latent_indices_4x;  // optional
  at::Tensor image_embeddings;                           // [B, N, image_proj_dim], optional
};

class PackedTransformer {
 public:
  PackedTransformer(TransformerConfig cfg, const Weights& w);  // w: the transformer folder's
  ~PackedTransformer();
  PackedTransformer(const PackedTransformer&) = delete;
  PackedTransformer& operator=(const PackedTransformer&) = delete;

  // -> [B, out_channels, T, H, W], float32.
  at::Tensor forward(const TransformerInputs& in);
  // TeaCache as FramePack does it: a step reuses the previous blocks' residual while the
  // accumulated (rescaled) relative L1 change of block 0's modulated input stays under the
  // threshold; the first and last of `num_steps` calls always compute. Off by default.
  void initialize_teacache(bool enable, int num_steps = 25, double rel_l1_thresh = 0.15);
  // MagCache as FramePack-Studio runs it (models/magcache.h): `ratios` from magcache_ratios for
  // this section's step count and picture size; a skipped call adds the last computed residual.
  // Off by default; TeaCache, when on, comes first.
  void initialize_magcache(bool enable, std::vector<double> ratios = {}, int num_steps = 25,
                           MagCacheSettings settings = {});
  // The caches' running state. A step retried after an out-of-memory restores the state from
  // before its first try, so that the retry decides (compute or reuse) exactly as that try did.
  struct TeaCache {
    bool enabled = false;
    int count = 0;
    int num_steps = 25;
    double threshold = 0.15;
    double accumulated = 0.0;
    at::Tensor previous_modulated_input, previous_residual;  // (replaced, never written into)
  };
  struct MagCache {
    MagCacheState decision;
    at::Tensor previous_residual;  // (replaced, never written into)
  };
  struct CacheState {
    TeaCache tea;
    MagCache mag;
    int computed_calls = 0, reused_calls = 0;  // a retried call is counted once
  };
  CacheState cache_state() const { return {tea_, mag_, computed_calls_, reused_calls_}; }
  void restore_cache_state(const CacheState& state) {
    tea_ = state.tea;
    mag_ = state.mag;
    computed_calls_ = state.computed_calls;
    reused_calls_ = state.reused_calls;
  }
  const TeaCache& teacache_state() const { return tea_; }
  const MagCache& magcache_state() const { return mag_; }
  // Forward calls since the last initialize_teacache / initialize_magcache that ran the blocks,
  // and those that reused a cached residual instead.
  int computed_calls() const { return computed_calls_; }
  int reused_calls() const { return reused_calls_; }
  const TransformerConfig& config() const { return cfg_; }

  // Queries per block in the chunked attention (LibTorch without fused attention).
  std::int64_t attention_query_chunk = 1024;

  // The weights as modules in checkpoint order, which is the order the forward uses them in:
  // x_embedder, clean_x_embedder, context_embedder, time_text_embed, image_projection (those the
  // config has), transformer_blocks.N, single_transformer_blocks.N, norm_out, proj_out. FramePack
  // places and streams weights per module; so does the memory governor (memory/residency.h).
  int num_modules() const;
  const std::string& module_name(int i) const;  // the checkpoint prefix
  // The tensors of module i (checkpoint key, pointer to the held tensor), so that the memory
  // governor can swap device copies in and out between calls to before_module.
  std::vector<std::pair<std::string, at::Tensor*>> module_tensors(int i);
  int first_block_module() const { return first_block_; }  // transformer_blocks.0 (or norm_out)
  int num_blocks() const;                                  // dual + single blocks
  // Called with a module's index right before the forward uses its weights (TeaCache's reuse
  // skips the blocks). Default: empty.
  std::function<void(int module_index)> before_module;

  // Where inputs and activations go (default: the device the weights were loaded on). The memory
  // governor keeps the weights on the host and computes on the device.
  void set_compute_device(at::Device device);
  at::Device compute_device() const { return device_; }

  // How the held tensor `key` (a module_tensors name) becomes what the forward computes with.
  // Loaded at use (Conversion::kAtUse), the held tensors are the mapped checkpoint's, in its
  // dtype: whoever places a module (memory/residency.h) makes the copies in this form, and a
  // forward without such a placement hook is refused. proj_out computes in float32 always.
  WeightForm weight_form(const std::string& key) const;
  Conversion conversion() const { return weights_.conversion(); }
  const Weights& weights() const { return weights_; }
  // The LoRA factors from now on (null: none): a warm model takes a new job's LoRAs or strengths
  // this way instead of being loaded again. Converted at use (a device job's mapped host copy),
  // they are added at every placement; converted at load (the plain CPU), every weight the old or
  // the new set touches is converted again from the mapping with the new factors.
  void set_lora_patch(std::shared_ptr<const LoraPatch> patch);

 private:
  struct Params;
  bool teacache_should_compute(const at::Tensor& img, const at::Tensor& temb);
  const transformer::ModuleRef& module(int i) const;  // Error when out of range
  int module_index(transformer::ModuleKind kind) const;

  TransformerConfig cfg_;
  at::ScalarType dtype_;
  at::Device device_;
  Weights weights_;  // what the model was loaded from (forms of its tensors)
  std::unique_ptr<Params> p_;
  std::vector<transformer::ModuleRef> modules_;
  int first_block_ = 0;
  TeaCache tea_;
  MagCache mag_;
  int computed_calls_ = 0, reused_calls_ = 0;
};

// Reads `folder`/config.json and the folder's safetensors; checks every key and shape first
// (an Error lists all missing and mis-shaped tensors). `conversion`: see Weights; at use, the
// weights stay on the host whatever `device` says (the governor places them).
// `loras`: LoRA files added to the weights as they are converted (models/lora.h); every file is
// read and checked against the checkpoint before the model is built. `store`: the folder's
// checkpoint when the caller has opened it already (else it is opened here).
struct TransformerLoras {
  std::shared_ptr<const LoraPatch> patch;  // set: already read (files are then not read)
  std::vector<LoraSpec> files;
  LoraOptions options;
  std::vector<LoraFileReport>* reports = nullptr;  // filled when set
};
std::shared_ptr<PackedTransformer> load_transformer(
    const std::string& folder, at::ScalarType dtype, at::Device device,
    Conversion conversion = Conversion::kAtLoad, const TransformerLoras& loras = {},
    std::shared_ptr<const io::TensorStore> store = nullptr);

}  // namespace framesmith
