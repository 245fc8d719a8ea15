#include "sampling/sample_hunyuan.h"

#include <framesmith/error.h>

#include <sstream>
#include <string>
#include <utility>

#include "memory/simulated_device.h"
#include "sampling/flow_sigmas.h"
#include "sampling/guidance.h"

namespace framesmith::sampling {
namespace {

// FramePack's repeat_to_batch_size: tile the first axis up to `batch`.
at::Tensor repeat_to_batch(const at::Tensor& t, std::int64_t batch, const char* what) {
  if (!t.defined() || t.size(0) == batch) return t;
  if (batch % t.size(0) != 0) {
    std::ostringstream o;
    o << "sample_hunyuan: cannot repeat " << what << " of batch " << t.size(0) << " to batch "
      << batch;
    throw Error(o.str());
  }
  std::vector<std::int64_t> reps(static_cast<std::size_t>(t.dim()), 1);
  reps[0] = batch / t.size(0);
  return t.repeat(reps);
}

// Floating tensors go to (device, dtype), integer and bool ones to the device only.
at::Tensor to_model(const at::Tensor& t, const SampleHunyuanParams& p) {
  if (!t.defined()) return t;
  return at::isFloatingType(t.scalar_type()) ? t.to(p.device, p.dtype) : t.to(p.device);
}

PromptConditioning prepare_prompt(const PromptConditioning& c, std::int64_t batch,
                                  const SampleHunyuanParams& p, const char* what) {
  if (!c.embeds.defined() || !c.poolers.defined()) {
    throw Error(std::string("sample_hunyuan: the ") + what +
                " prompt needs embeddings and pooled projections");
  }
  PromptConditioning out;
  out.embeds = to_model(repeat_to_batch(c.embeds, batch, what), p);
  out.mask = to_model(repeat_to_batch(c.mask, batch, what), p);
  out.poolers = to_model(repeat_to_batch(c.poolers, batch, what), p);
  return out;
}

void check_params(const SampleHunyuanParams& p) {
  if (p.width <= 0 || p.height <= 0 || p.width % 8 != 0 || p.height % 8 != 0) {
    throw Error("sample_hunyuan: width and height must be positive multiples of 8, got " +
                std::to_string(p.width) + "x" + std::to_string(p.height));
  }
  if (p.frames < 1) throw Error("sample_hunyuan: frames must be >= 1");
  if (p.num_inference_steps < 1) {
    throw Error("sample_hunyuan: steps must be >= 1, got " + std::to_string(p.num_inference_steps));
  }
}

}  // namespace

FlowModel make_flow_model(TransformerForward forward, const SampleHunyuanParams& params,
                          const HunyuanConditioning& cond, const SectionContext& ctx) {
  const std::int64_t batch = cond.positive.embeds.defined() ? cond.positive.embeds.size(0) : 0;
  if (batch < 1) throw Error("sample_hunyuan: the positive prompt embeddings are missing");
  const bool use_cfg = params.real_guidance_scale != 1.0;

  // The inputs every forward shares; hidden_states and timestep are filled per call.
  TransformerInputs base;
  // torch.tensor([gs * 1000.0] * B) is float32, then .to(dtype).
  base.guidance = at::full({batch}, params.distilled_guidance_scale * 1000.0, at::kFloat)
                      .to(params.device, params.dtype);
  base.image_embeddings = to_model(repeat_to_batch(cond.image_embeddings, batch, "image"), params);
  base.latent_indices = to_model(ctx.latent_indices, params);
  base.clean_latents = to_model(ctx.clean_latents, params);
  base.clean_latent_indices = to_model(ctx.clean_latent_indices, params);
  base.clean_latents_2x = to_model(ctx.clean_latents_2x, params);
  base.clean_latent_indices_2x = to_model(ctx.clean_latent_indices_2x, params);
  base.clean_latents_4x = to_model(ctx.clean_latents_4x, params);
  base.clean_latent_indices_4x = to_model(ctx.clean_latent_indices_4x, params);

  TransformerInputs positive = base;
  const PromptConditioning pos = prepare_prompt(cond.positive, batch, params, "positive");
  positive.encoder_hidden_states = pos.embeds;
  positive.encoder_attention_mask = pos.mask;
  positive.pooled_projections = pos.poolers;

  TransformerInputs negative = base;
  if (use_cfg) {
    const PromptConditioning neg = prepare_prompt(cond.negative, batch, params, "negative");
    negative.encoder_hidden_states = neg.embeds;
    negative.encoder_attention_mask = neg.mask;
    negative.pooled_projections = neg.poolers;
  }

  const double cfg = params.real_guidance_scale, rescale = params.guidance_rescale;
  const at::Device device = params.device;
  const at::ScalarType dtype = params.dtype;
  return
      [forward = std::move(forward), positive = std::move(positive), negative = std::move(negative),
       use_cfg, cfg, rescale, device, dtype](const at::Tensor& x, const at::Tensor& sigma) {
        // fm_wrapper: x.to(dtype), timestep = (sigma.float() * 1000).to(dtype).
        const at::Tensor hidden = x.to(device, dtype);
        const at::Tensor timestep = (sigma.to(at::kFloat) * 1000.0).to(device, dtype);
        TransformerInputs in = positive;
        in.hidden_states = hidden;
        in.timestep = timestep;
        const at::Tensor pred_pos = forward(in).to(at::kFloat);
        at::Tensor pred_neg;
        if (use_cfg) {
          in = negative;
          in.hidden_states = hidden;
          in.timestep = timestep;
          pred_neg = forward(in).to(at::kFloat);
        }
        return apply_cfg(pred_pos, pred_neg, cfg, rescale);
      };
}

at::Tensor initial_noise(const SampleHunyuanParams& p, std::int64_t batch,
                         at::Generator& generator) {
  return at::randn({batch, p.latent_channels, (p.frames + 3) / 4, p.height / 8, p.width / 8},
                   generator, at::TensorOptions().dtype(at::kFloat));
}

at::Tensor sample_hunyuan(const TransformerForward& forward, const SampleHunyuanParams& params,
                          const HunyuanConditioning& cond, const SectionContext& ctx,
                          at::Generator& generator, const SampleHooks& hooks) {
  check_params(params);
  if (!cond.positive.embeds.defined()) {
    throw Error("sample_hunyuan: the positive prompt embeddings are missing");
  }
  const std::int64_t batch = cond.positive.embeds.size(0);
  at::Tensor noise, sigmas;
  {
    const memory::HostScope host;  // the sampler's state is on the host (unipc.h)
    // Drawn first, before anything else touches the generator, as FramePack does.
    noise = initial_noise(params, batch, generator);
    sigmas = flux_sigmas_for_latent(params.num_inference_steps, noise.size(2), noise.size(3),
                                    noise.size(4), params.shift);
  }
  FlowModel model;
  {
    // The model's inputs (conditioning, context latents) are on its device for the section.
    const memory::OnDeviceScope device;
    model = make_flow_model(forward, params, cond, ctx);
  }
  if (hooks.wrap_model) model = hooks.wrap_model(std::move(model));
  UniPCOptions options;
  options.model_input_dtype = params.dtype;
  return sample_unipc(model, noise, sigmas, hooks.on_step, hooks.cancel, options);
}

at::Tensor sample_hunyuan(PackedTransformer& transformer, const SampleHunyuanParams& params,
                          const HunyuanConditioning& cond, const SectionContext& ctx,
                          at::Generator& generator, const SampleHooks& hooks) {
  const TransformerForward forward = [&transformer](const TransformerInputs& in) {
    return transformer.forward(in);
  };
  return sample_hunyuan(forward, params, cond, ctx, generator, hooks);
}

}  // namespace framesmith::sampling
