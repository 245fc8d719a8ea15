// FramePack's sample_hunyuan (diffusers_helper/pipelines/k_diffusion_hunyuan.py) with the
// fm_wrapper around the transformer (k_diffusion/wrapper.py): noise from a CPU generator, flux
// sigmas, distilled guidance (gs * 1000) and optional real CFG with guidance rescale, sampled
// with UniPC bh1. The result is the final x0 prediction, CPU float32 (B, 16, T, H/8, W/8).
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "models/transformer_packed.h"
#include "sampling/unipc.h"

namespace framesmith::sampling {

// One prompt's text conditioning: LLaMA hidden states padded to a fixed length (B, L, D), its
// mask (B, L) and the CLIP pooled output (B, P).
struct PromptConditioning {
  at::Tensor embeds, mask, poolers;
};

struct HunyuanConditioning {
  PromptConditioning positive;
  // Used only when real_guidance_scale != 1 (FramePack passes zeros then and never runs it).
  PromptConditioning negative;
  at::Tensor image_embeddings;  // SigLIP last_hidden_state (B, N, 1152); optional
};

// The section's frame positions and clean-latent context (FramePack's **kwargs). Any may be
// undefined where the transformer treats it as absent.
struct SectionContext {
  at::Tensor latent_indices;
  at::Tensor clean_latents, clean_latent_indices;
  at::Tensor clean_latents_2x, clean_latent_indices_2x;
  at::Tensor clean_latents_4x, clean_latent_indices_4x;
};

struct SampleHunyuanParams {
  std::int64_t width = 512, height = 512;  // pixels; latents are 1/8
  std::int64_t frames = 16;                // pixel frames; latent frames = (frames + 3) / 4
  std::int64_t latent_channels = 16;
  double real_guidance_scale = 1.0;       // "cfg"; 1 = one forward per step
  double distilled_guidance_scale = 6.0;  // "gs"; fed to the transformer as gs * 1000
  double guidance_rescale = 0.0;          // "rs"
  std::optional<double> shift;            // fixed flow shift; default: from the sequence length
  int num_inference_steps = 25;
  at::ScalarType dtype = at::kBFloat16;  // what x, timestep and guidance are cast to
  at::Device device = at::kCPU;          // the transformer's device
};

// Anything that runs the packed transformer (the model itself, or a wrapper that streams
// weights or retries on out-of-memory).
using TransformerForward = std::function<at::Tensor(const TransformerInputs&)>;

struct SampleHooks {
  StepCallback on_step;                       // after each step: (step, x, denoised)
  const std::atomic<bool>* cancel = nullptr;  // checked before each step -> framesmith::Cancelled
  // Wraps the per-step flow model (e.g. a memory governor's retry loop). Optional.
  std::function<FlowModel(FlowModel)> wrap_model;
};

// The flow prediction function fm_wrapper builds: x -> cast to dtype on the device, timestep
// sigma * 1000 cast to dtype, positive (and, with CFG, negative) forward, CFG + rescale.
// Conditioning is moved to the device/dtype once here.
FlowModel make_flow_model(TransformerForward forward, const SampleHunyuanParams& params,
                          const HunyuanConditioning& cond, const SectionContext& ctx);

// The initial noise: randn((B, C, (frames + 3) / 4, height / 8, width / 8)) drawn from
// `generator` (a CPU generator, so that torch.Generator("cpu").manual_seed(s) is reproduced).
at::Tensor initial_noise(const SampleHunyuanParams& params, std::int64_t batch,
                         at::Generator& generator);

// sample_hunyuan(sampler='unipc') without initial_latent / concat_latent (FramePack's demos
// use neither). `generator` advances, as FramePack's shared `rnd` does across sections.
at::Tensor sample_hunyuan(const TransformerForward& forward, const SampleHunyuanParams& params,
                          const HunyuanConditioning& cond, const SectionContext& ctx,
                          at::Generator& generator, const SampleHooks& hooks = {});

// Convenience: the transformer's own forward.
at::Tensor sample_hunyuan(PackedTransformer& transformer, const SampleHunyuanParams& params,
                          const HunyuanConditioning& cond, const SectionContext& ctx,
                          at::Generator& generator, const SampleHooks& hooks = {});

}  // namespace framesmith::sampling
