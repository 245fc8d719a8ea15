// Everything FramePack computes before sampling: the start image cropped to its bucket, the
// prompt embeddings (LLaMA hidden[-3] + CLIP pooled, or a conditioning file), and the SigLIP
// image embeddings. Conditioning files use FramePack's variable names.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

#include "framesmith/model_set.h"
#include "framesmith/pipeline.h"
#include "pipeline/timed_prompts.h"
#include "sampling/sample_hunyuan.h"

namespace framesmith {
class LlamaModel;
}  // namespace framesmith

namespace framesmith::pipeline {

// Tensor names of a conditioning file (FramePack's variable names).
constexpr const char* kLlamaVec = "llama_vec";
constexpr const char* kLlamaMask = "llama_attention_mask";
constexpr const char* kClipPooler = "clip_l_pooler";
constexpr const char* kLlamaVecNeg = "llama_vec_n";
constexpr const char* kLlamaMaskNeg = "llama_attention_mask_n";
constexpr const char* kClipPoolerNeg = "clip_l_pooler_n";
constexpr const char* kImageEmbeddings = "image_encoder_last_hidden_state";

// The start image at its bucket: uint8 (H, W, 3), FramePack's resize-and-center-crop.
at::Tensor prepare_start_image(const Frames& image, int resolution);
// uint8 pictures, (H, W, 3) or (T, H, W, 3), as the VAE takes them: (1, 3, T, H, W) float32 in
// [-1, 1], x / 127.5 - 1 as FramePack and FramePack-Studio scale them.
at::Tensor vae_pixels(const at::Tensor& u8);
// A timed-prompt section's conditioning (pipeline/timed_prompts.h): prompt p.first, or
// (1 - w) * first + w * second for embeddings and poolers with the first's mask.
sampling::PromptConditioning blended_prompt(
    const std::vector<sampling::PromptConditioning>& prompts, const SectionPrompt& p);
// `image` resized to cover `width` x `height` and centre-cropped to it (FramePack's
// resize_and_center_crop): uint8 (H, W, 3). The end image takes the start image's size so.
at::Tensor prepare_image_for(const Frames& image, std::int64_t width, std::int64_t height);

// Reads a conditioning file; checks names, ranks and that widths agree.
sampling::HunyuanConditioning load_conditioning(const std::string& path);
void save_conditioning(const std::string& path, const sampling::HunyuanConditioning& c);

// How encode_text places its encoders (the memory governor's low-VRAM mode).
struct TextEncodeHooks {
  // When set, the LLaMA is loaded on the host (in the compute dtype; on the simulated device
  // outside its budget) with `device` as its compute device, and place_llama is called with it;
  // what it returns is kept until the encoding ends (a streamer that copies each module onto the
  // device at use, through LlamaModel::before_module). CLIP is loaded on `device` whole either way.
  std::function<std::shared_ptr<void>(LlamaModel&)> place_llama;
  // Keep the loaded encoders in the warm registry (pipeline/warm_models.h) for later jobs. Only
  // where they are host-side as a whole (no place_llama: CLIP would be a device copy).
  bool keep_warm = false;
};

// Empties the prompt cache below (the host rung of an out-of-memory ladder: it only saves time).
void clear_prompt_cache();

// True when encode_text on `device` would take every prompt it needs from the cache (no encoder
// runs, nothing is placed on the device).
bool prompts_cached(const ModelSet& models, const std::string& prompt,
                    const std::string& negative_prompt, double cfg, at::Device device);

// Encodes prompt and negative prompt with the model set's LLaMA and CLIP text encoders (with
// cfg == 1 the negative conditioning is zeros, as FramePack). Missing components: Error naming
// them. Prompts already encoded on `device` come from a small cache.
void encode_text(const ModelSet& models, const std::string& prompt,
                 const std::string& negative_prompt, double cfg, at::Device device,
                 sampling::HunyuanConditioning& out, const TextEncodeHooks& hooks = {});
// As encode_text for each of `prompts` (timed prompts), the encoders loaded once; out[i] is
// prompts[i]'s, each with the same negative conditioning.
void encode_texts(const ModelSet& models, const std::vector<std::string>& prompts,
                  const std::string& negative_prompt, double cfg, at::Device device,
                  std::vector<sampling::HunyuanConditioning>& out,
                  const TextEncodeHooks& hooks = {});

// SigLIP last_hidden_state of the start image (uint8 H x W x 3) through the feature extractor.
at::Tensor encode_image(const ModelSet& models, const at::Tensor& image_hw3, at::Device device);

}  // namespace framesmith::pipeline
