#include "pipeline/section_loop.h"

#include <ATen/CPUGeneratorImpl.h>
#include <framesmith/error.h>

#include <sstream>
#include <string>
#include <utility>

#include "pipeline/preview.h"

namespace framesmith::pipeline {
namespace {

// FramePack: 1 (1x) + 2 (2x) + 16 (4x) latent frames of clean context.
constexpr std::int64_t kContext1x = 1, kContext2x = 2, kContext4x = 16;
constexpr std::int64_t kContextFrames = kContext1x + kContext2x + kContext4x;

at::Tensor host_float(const at::Tensor& t) {
  return t.to(at::kCPU, at::kFloat);
}

at::Tensor frames(const at::Tensor& t, std::int64_t begin, std::int64_t end) {
  return t.slice(2, begin, end);
}

void check_inputs(const SectionLoopInputs& in, const SectionLoopParams& p) {
  if (!in.start_latent.defined() && !in.start_image.defined()) {
    throw Error("section loop: neither a start latent nor a start image was given");
  }
  if (!in.conditioning.positive.embeds.defined() || !in.conditioning.positive.poolers.defined()) {
    throw Error("section loop: the prompt embeddings and pooled projections are missing");
  }
  if (p.latent_window_size < 1) {
    throw Error("section loop: latent window size must be >= 1, got " +
                std::to_string(p.latent_window_size));
  }
  if (p.steps < 1) throw Error("section loop: steps must be >= 1, got " + std::to_string(p.steps));
}

void check_start_latent(const at::Tensor& s) {
  if (s.dim() != 5 || s.size(0) != 1 || s.size(2) != 1) {
    std::ostringstream o;
    o << "section loop: the start latent must be (1, C, 1, h, w), got " << s.sizes();
    throw Error(o.str());
  }
}

// Shared by both variants: one sample_hunyuan call with FramePack's per-section settings.
class SectionSampler {
 public:
  SectionSampler(PackedTransformer& transformer, const SectionLoopInputs& inputs,
                 const SectionLoopParams& params, const SectionLoopCallbacks& callbacks,
                 std::int64_t latent_height, std::int64_t latent_width, int num_sections)
      : transformer_(transformer),
        inputs_(inputs),
        params_(params),
        callbacks_(callbacks),
        num_sections_(num_sections),
        generator_(at::detail::createCPUGenerator(params.seed)) {
    sp_.width = latent_width * 8;
    sp_.height = latent_height * 8;
    sp_.frames = params.latent_window_size * 4 - 3;
    sp_.real_guidance_scale = params.cfg;
    sp_.distilled_guidance_scale = params.gs;
    sp_.guidance_rescale = params.rs;
    sp_.shift = params.shift;
    sp_.num_inference_steps = params.steps;
    sp_.dtype = params.sample_dtype;
    sp_.device = params.transformer_device;
  }

  at::Tensor sample(int section, const sampling::SectionContext& ctx,
                    std::int64_t generated_latent_frames) {
    transformer_.initialize_teacache(params_.use_teacache, params_.steps,
                                     params_.teacache_threshold);
    sampling::SampleHooks hooks;
    hooks.cancel = callbacks_.cancel;
    hooks.wrap_model = callbacks_.wrap_model;
    if (callbacks_.on_step) {
      hooks.on_step = [&](int step, const at::Tensor&, const at::Tensor& denoised) {
        StepProgress p;
        p.section = section;
        p.num_sections = num_sections_;
        p.step = step;
        p.num_steps = params_.steps;
        p.generated_latent_frames = generated_latent_frames;
        callbacks_.on_step(p, preview_rgb8(vae_decode_fake(denoised)));
      };
    }
    return sampling::sample_hunyuan(transformer_, sp_, inputs_.conditioning, ctx, generator_,
                                    hooks);
  }

  // A resumed section: its noise is drawn as sample() would draw it and dropped, so that the
  // following sections get the noise of an uninterrupted run (the generator is used for nothing
  // else).
  void skip_noise() {
    sampling::initial_noise(sp_, inputs_.conditioning.positive.embeds.size(0), generator_);
  }

 private:
  PackedTransformer& transformer_;
  const SectionLoopInputs& inputs_;
  const SectionLoopParams& params_;
  const SectionLoopCallbacks& callbacks_;
  int num_sections_;
  sampling::SampleHunyuanParams sp_;
  at::Generator generator_;  // FramePack's `rnd`: one generator for all sections
};

void check_cancel(const SectionLoopCallbacks& cb) {
  if (cb.cancel != nullptr && cb.cancel->load()) throw Cancelled();
}

// decode_latents, or the caller's replacement (SectionLoopCallbacks::decode).
at::Tensor decode_section(const Vae& vae, const at::Tensor& latents, const SectionLoopParams& p,
                          const SectionLoopCallbacks& cb) {
  return cb.decode ? cb.decode(latents) : decode_latents(vae, latents, p.tiling);
}

// A saved section's latents, checked against the shape this section generates.
at::Tensor resumed_latents(const at::Tensor& saved, const at::Tensor& start, std::int64_t frames,
                           std::size_t section) {
  if (saved.dim() != 5 || saved.size(0) != 1 || saved.size(1) != start.size(1) ||
      saved.size(2) != frames || saved.size(3) != start.size(3) || saved.size(4) != start.size(4)) {
    std::ostringstream o;
    o << "section loop: the saved latents of section " << section + 1 << " are " << saved.sizes()
      << ", this job's sections are (1, " << start.size(1) << ", " << frames << ", "
      << start.size(3) << ", " << start.size(4) << ")";
    throw Error(o.str());
  }
  return host_float(saved);
}

// demo_gradio.py: sections from the end of the video back to its start.
void run_original(SectionSampler& sampler, const Vae& vae, const at::Tensor& start,
                  const SectionLoopParams& p, const SectionLoopCallbacks& cb, int num_sections,
                  const std::vector<at::Tensor>& resume, SectionLoopResult& result) {
  const std::int64_t window = p.latent_window_size;
  const std::int64_t overlap = window * 4 - 3;
  at::Tensor history =
      at::zeros({1, start.size(1), kContextFrames, start.size(3), start.size(4)}, at::kFloat);
  at::Tensor pixels;
  std::int64_t total = 0;
  const std::vector<int> paddings = latent_paddings(num_sections);
  for (std::size_t si = 0; si < paddings.size(); ++si) {
    check_cancel(cb);
    const bool last = paddings[si] == 0;
    const SectionIndices idx = original_section_indices(paddings[si], p.latent_window_size);
    sampling::SectionContext ctx;
    ctx.latent_indices = idx.latent_indices;
    ctx.clean_latent_indices = idx.clean_latent_indices;
    ctx.clean_latent_indices_2x = idx.clean_latent_indices_2x;
    ctx.clean_latent_indices_4x = idx.clean_latent_indices_4x;
    // Context from the history's head (the frames right after this section in video order).
    ctx.clean_latents = at::cat({start, frames(history, 0, kContext1x)}, 2);
    ctx.clean_latents_2x = frames(history, kContext1x, kContext1x + kContext2x);
    ctx.clean_latents_4x = frames(history, kContext1x + kContext2x, kContextFrames);

    const bool resumed = si < resume.size();
    at::Tensor generated;
    if (resumed) {
      sampler.skip_noise();
      generated = resumed_latents(resume[si], start, window + (last ? 1 : 0), si);
    } else {
      generated = host_float(sampler.sample(static_cast<int>(si), ctx, total));
      if (last) generated = at::cat({start, generated}, 2);
      if (cb.on_sampled) cb.on_sampled(static_cast<int>(si), generated);
    }
    total += generated.size(2);
    history = at::cat({generated, history}, 2);
    const at::Tensor real = frames(history, 0, total);

    if (!pixels.defined()) {
      pixels = decode_section(vae, real, p, cb);
    } else {
      const std::int64_t n = last ? window * 2 + 1 : window * 2;
      const at::Tensor current = decode_section(vae, frames(real, 0, n), p, cb);
      pixels = soft_append_bcthw(current, pixels, overlap);
    }
    if (cb.on_section && !resumed) cb.on_section(static_cast<int>(si), generated, pixels);
    result.history_latents = real;
    if (last) break;
  }
  result.pixels = pixels;
}

// demo_gradio_f1.py: sections forwards from the start latent, appended.
void run_f1(SectionSampler& sampler, const Vae& vae, const at::Tensor& start,
            const SectionLoopParams& p, const SectionLoopCallbacks& cb, int num_sections,
            const std::vector<at::Tensor>& resume, SectionLoopResult& result) {
  const std::int64_t window = p.latent_window_size;
  const std::int64_t overlap = window * 4 - 3;
  at::Tensor history = at::cat(
      {at::zeros({1, start.size(1), kContextFrames, start.size(3), start.size(4)}, at::kFloat),
       start},
      2);
  at::Tensor pixels;
  std::int64_t total = 1;
  const SectionIndices idx = f1_section_indices(p.latent_window_size);
  for (int si = 0; si < num_sections; ++si) {
    check_cancel(cb);
    sampling::SectionContext ctx;
    ctx.latent_indices = idx.latent_indices;
    ctx.clean_latent_indices = idx.clean_latent_indices;
    ctx.clean_latent_indices_2x = idx.clean_latent_indices_2x;
    ctx.clean_latent_indices_4x = idx.clean_latent_indices_4x;
    // Context from the history's tail: [16 (4x) | 2 (2x) | 1 (1x)].
    const std::int64_t t = history.size(2);
    ctx.clean_latents_4x = frames(history, t - kContextFrames, t - kContext2x - kContext1x);
    ctx.clean_latents_2x = frames(history, t - kContext2x - kContext1x, t - kContext1x);
    ctx.clean_latents = at::cat({start, frames(history, t - kContext1x, t)}, 2);

    const bool resumed = si < static_cast<int>(resume.size());
    at::Tensor generated;
    if (resumed) {
      sampler.skip_noise();
      generated = resumed_latents(resume[si], start, window, si);
    } else {
      generated = host_float(sampler.sample(si, ctx, total));
      if (cb.on_sampled) cb.on_sampled(si, generated);
    }
    total += generated.size(2);
    history = at::cat({history, generated}, 2);
    const at::Tensor real = frames(history, history.size(2) - total, history.size(2));

    if (!pixels.defined()) {
      pixels = decode_section(vae, real, p, cb);
    } else {
      const at::Tensor current =
          decode_section(vae, frames(real, real.size(2) - window * 2, real.size(2)), p, cb);
      pixels = soft_append_bcthw(pixels, current, overlap);
    }
    if (cb.on_section && !resumed) cb.on_section(si, generated, pixels);
    result.history_latents = real;
  }
  result.pixels = pixels;
}

}  // namespace

int section_count(const SectionLoopParams& params) {
  if (params.num_sections > 0) return params.num_sections;
  return total_latent_sections(params.total_seconds, params.latent_window_size);
}

at::Tensor encode_start_latent(const Vae& vae, const at::Tensor& image, const VaeTiling& tiling) {
  // FramePack's vae_encode: encode, take the latent, times the scaling factor on the VAE's
  // device and dtype; the loop then keeps it as CPU float32 (`.to(history_latents)`).
  const VaePosterior posterior = vae.encode(image, tiling);
  return host_float(posterior.mode() * vae.config().scaling_factor);
}

at::Tensor decode_latents(const Vae& vae, const at::Tensor& latents, const VaeTiling& tiling) {
  return vae.decode(latents / vae.config().scaling_factor, tiling).to(at::kCPU);
}

SectionLoopResult run_section_loop(PackedTransformer& transformer, const Vae& vae,
                                   const SectionLoopInputs& inputs, const SectionLoopParams& params,
                                   const SectionLoopCallbacks& callbacks) {
  check_inputs(inputs, params);
  SectionLoopResult result;
  result.num_sections = section_count(params);
  check_cancel(callbacks);
  result.start_latent = inputs.start_latent.defined()
                            ? host_float(inputs.start_latent)
                            : encode_start_latent(vae, inputs.start_image, params.tiling);
  check_start_latent(result.start_latent);
  const at::Tensor& start = result.start_latent;
  if (static_cast<int>(inputs.resume_sections.size()) > result.num_sections) {
    throw Error("section loop: " + std::to_string(inputs.resume_sections.size()) +
                " saved sections given to resume, but the job has only " +
                std::to_string(result.num_sections));
  }
  if (callbacks.on_start_latent) callbacks.on_start_latent(start);

  SectionSampler sampler(transformer, inputs, params, callbacks, start.size(3), start.size(4),
                         result.num_sections);
  if (params.variant == LoopVariant::kF1) {
    run_f1(sampler, vae, start, params, callbacks, result.num_sections, inputs.resume_sections,
           result);
  } else {
    run_original(sampler, vae, start, params, callbacks, result.num_sections,
                 inputs.resume_sections, result);
  }
  return result;
}

}  // namespace framesmith::pipeline
