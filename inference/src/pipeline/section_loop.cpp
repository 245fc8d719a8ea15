#include "pipeline/section_loop.h"

#include <ATen/CPUGeneratorImpl.h>
#include <framesmith/error.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <utility>

#include "memory/simulated_device.h"
#include "pipeline/preview.h"
#include "pipeline/video_extend.h"

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
  const bool video = in.video.defined();  // the clip's last latent is the start
  if (video && (in.end_latent.defined() || in.end_image.defined()))
    throw Error("section loop: a video extension takes no end frame");
  if (!video && !in.start_latent.defined() && !in.start_image.defined()) {
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
  if (in.resume_sections.count > section_count(p))
    throw Error("section loop: " + std::to_string(in.resume_sections.count) +
                " saved sections given to resume, but the job has only " +
                std::to_string(section_count(p)));
  if ((in.end_latent.defined() || in.end_image.defined()) && p.variant == LoopVariant::kF1)
    throw Error(
        "section loop: an end frame needs the original model (F1 generates forwards, "
        "from the start frame, and has no end to hold)");
  if (!std::isfinite(p.end_frame_strength) || p.end_frame_strength < 0 || p.end_frame_strength > 1)
    throw Error("section loop: the end-frame strength must be in [0, 1]");
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
    sp_.latent_channels = transformer.config().in_channels;
    sp_.real_guidance_scale = params.cfg;
    sp_.distilled_guidance_scale = params.gs;
    sp_.guidance_rescale = params.rs;
    sp_.shift = params.shift;
    sp_.num_inference_steps = params.steps;
    sp_.dtype = params.sample_dtype;
    sp_.device = params.transformer_device;
    if (params.use_magcache && !params.use_teacache)
      magcache_ratios_ =
          magcache_ratios(
              params.variant == LoopVariant::kF1 ? MagCacheFamily::kF1 : MagCacheFamily::kOriginal,
              int(sp_.height), int(sp_.width), params.steps)
              .ratios;
  }

  at::Tensor sample(int section, const sampling::SectionContext& ctx,
                    std::int64_t generated_latent_frames) {
    // Each section starts both caches afresh, as FramePack and FramePack-Studio do.
    transformer_.initialize_teacache(params_.use_teacache, params_.steps,
                                     params_.teacache_threshold);
    transformer_.initialize_magcache(!magcache_ratios_.empty(), magcache_ratios_, params_.steps,
                                     params_.magcache);
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
    if (inputs_.section_conditioning) {
      const sampling::HunyuanConditioning cond =
          inputs_.section_conditioning(section, generated_latent_frames);
      return sampling::sample_hunyuan(transformer_, sp_, cond, ctx, generator_, hooks);
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
  std::vector<double> magcache_ratios_;  // empty: MagCache off
  at::Generator generator_;              // FramePack's `rnd`: one generator for all sections
};

void check_cancel(const SectionLoopCallbacks& cb) {
  if (cb.cancel != nullptr && cb.cancel->load()) throw Cancelled();
}

// decode_latents, or the caller's replacement (SectionLoopCallbacks::decode).
at::Tensor decode_section(const Vae& vae, const at::Tensor& latents, const SectionLoopParams& p,
                          const SectionLoopCallbacks& cb) {
  // Device work (the governor's decoder marks its own host parts: the pixels it hands back).
  const memory::OnDeviceScope device;
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

// Latent frames of history a section can still read: the 1 + 2 + 16 context frames and the
// two windows (plus the start latent) that the next decode takes. Older frames are saved with
// their sections and never read again.
std::int64_t kept_latent_frames(std::int64_t window) {
  return std::max(kContextFrames, 2 * window + 1);
}

// The part of the video that a later section still blends into, and where it sits.
struct PixelTail {
  at::Tensor frames;  // undefined before the first section
  std::int64_t first = 0;
};

// Hands out what one section made final and updates the tail. `combined` is the section's
// decode blended with the previous tail (soft_append_bcthw, as FramePack blends it into the
// whole video), starting at frame `combined_first` of the finished video. The tail is the
// `overlap` frames at the growing end: the front for the original loop, the back for F1.
void hand_out(SectionOutput& out, const at::Tensor& combined, std::int64_t combined_first,
              std::int64_t overlap, bool last, bool backwards, PixelTail& tail,
              SectionLoopResult& result, const SectionLoopCallbacks& cb) {
  const std::int64_t n = combined.size(2);
  result.max_held_pixel_frames = std::max(result.max_held_pixel_frames, n);
  const std::int64_t keep = last ? 0 : overlap;
  const std::int64_t final_begin = backwards ? keep : 0;
  out.final_pixels = frames(combined, final_begin, final_begin + n - keep);
  out.first_final_frame = combined_first + final_begin;
  // A copy, so that the blended section is freed once its final frames are handed out.
  tail.frames = frames(combined, backwards ? 0 : n - keep, backwards ? keep : n).clone();
  tail.first = backwards ? combined_first : combined_first + n - keep;
  out.tail_pixels = tail.frames;
  out.first_tail_frame = tail.first;
  out.total_frames = result.total_frames;
  if (cb.on_section) cb.on_section(out);
}

// demo_gradio.py: sections from the end of the video back to its start.
void run_original(SectionSampler& sampler, const Vae& vae, const at::Tensor& start,
                  const SectionLoopParams& p, const SectionLoopCallbacks& cb, int num_sections,
                  const ResumedSections& resume, SectionLoopResult& result) {
  const at::Tensor& end = result.end_latent;
  const std::int64_t window = p.latent_window_size;
  const std::int64_t overlap = window * 4 - 3;
  const std::int64_t keep = kept_latent_frames(window);
  // Newest (earliest in video order) first; cut to `keep` frames after every section.
  at::Tensor history =
      at::zeros({1, start.size(1), kContextFrames, start.size(3), start.size(4)}, at::kFloat);
  // FramePack-Studio's end frame: the first section's "post" latent. It stays in the history
  // behind the generated frames, so later sections see it in their 2x / 4x context, and is never
  // decoded (the decode reads generated frames only).
  if (end.defined()) frames(history, 0, 1).copy_(end * p.end_frame_strength);
  PixelTail tail;
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
    if (cb.on_context) cb.on_context(static_cast<int>(si), ctx);

    SectionOutput out;
    out.section = static_cast<int>(si);
    out.resumed = si < std::size_t(resume.count);
    if (out.resumed) {
      sampler.skip_noise();
      out.new_latents = resumed_latents(resume.load(int(si)), start, window + (last ? 1 : 0), si);
    } else {
      out.new_latents = host_float(sampler.sample(static_cast<int>(si), ctx, total));
      if (last) out.new_latents = at::cat({start, out.new_latents}, 2);
      if (cb.on_sampled) cb.on_sampled(static_cast<int>(si), out.new_latents);
    }
    total += out.new_latents.size(2);
    history = frames(at::cat({out.new_latents, history}, 2), 0, keep);
    result.max_held_latent_frames = std::max(result.max_held_latent_frames, history.size(2));
    // FramePack decodes the newest 2 windows (+1 at the end) of the real history and
    // soft-appends the whole video after them; only its first `overlap` frames take part.
    const std::int64_t n = std::min(total, last ? window * 2 + 1 : window * 2);
    const at::Tensor current = decode_section(vae, frames(history, 0, n), p, cb);
    const at::Tensor combined =
        tail.frames.defined() ? soft_append_bcthw(current, tail.frames, overlap) : current;
    const std::int64_t combined_first = tail.frames.defined()
                                            ? tail.first - (current.size(2) - overlap)
                                            : result.total_frames - current.size(2);
    hand_out(out, combined, combined_first, overlap, last, true, tail, result, cb);
    if (last) break;
  }
}

// demo_gradio_f1.py: sections forwards from the start latent, appended.
void run_f1(SectionSampler& sampler, const Vae& vae, const at::Tensor& start,
            const SectionLoopParams& p, const SectionLoopCallbacks& cb, int num_sections,
            const ResumedSections& resume, SectionLoopResult& result) {
  const std::int64_t window = p.latent_window_size;
  const std::int64_t overlap = window * 4 - 3;
  const std::int64_t keep = kept_latent_frames(window);
  // Oldest first; cut to the newest `keep` frames after every section.
  at::Tensor history = at::cat(
      {at::zeros({1, start.size(1), kContextFrames, start.size(3), start.size(4)}, at::kFloat),
       start},
      2);
  PixelTail tail;
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
    if (cb.on_context) cb.on_context(si, ctx);

    SectionOutput out;
    out.section = si;
    out.resumed = si < resume.count;
    if (out.resumed) {
      sampler.skip_noise();
      out.new_latents = resumed_latents(resume.load(si), start, window, si);
    } else {
      out.new_latents = host_float(sampler.sample(si, ctx, total));
      if (cb.on_sampled) cb.on_sampled(si, out.new_latents);
    }
    total += out.new_latents.size(2);
    history = at::cat({history, out.new_latents}, 2);
    history = frames(history, std::max<std::int64_t>(0, history.size(2) - keep), history.size(2));
    result.max_held_latent_frames = std::max(result.max_held_latent_frames, history.size(2));
    // The first section decodes the whole real history (start + window), later ones the newest
    // two windows, soft-appended after the video so far; only its last `overlap` frames blend.
    const std::int64_t n = tail.frames.defined() ? window * 2 : total;
    const std::int64_t h = history.size(2);
    const at::Tensor current = decode_section(vae, frames(history, h - n, h), p, cb);
    const at::Tensor combined =
        tail.frames.defined() ? soft_append_bcthw(tail.frames, current, overlap) : current;
    const std::int64_t combined_first = tail.frames.defined() ? tail.first : 0;
    hand_out(out, combined, combined_first, overlap, si + 1 == num_sections, false, tail, result,
             cb);
  }
}

// The clip's last latents that the seam's decode puts in front of the section next to the clip:
// up to a window of them, and no more frames than the clip has (their 1 + 4 (s - 1) decoded
// frames are blended into the clip's last ones).
std::int64_t seam_latents(const VideoInput& v, std::int64_t window) {
  const std::int64_t by_frames = (v.clip_pixels.size(2) - 1) / 4 + 1;
  return std::max<std::int64_t>(1, std::min({window, v.latents.size(2), by_frames}));
}

// FramePack-Studio's "Video" (backward: the original weights, sections from the far end back
// to the clip) and "Video F1" (forward) loops over an input clip's latents. The history is the
// clip's latents and every section made (latents only: the context reads the clip's and the
// newest); pixels are handed out as the other loops do, with a tail of `overlap` frames.
void run_video(SectionSampler& sampler, const Vae& vae, const VideoInput& v,
               const SectionLoopParams& p, const SectionLoopCallbacks& cb, int num_sections,
               const ResumedSections& resume, SectionLoopResult& result) {
  const bool forward = p.variant == LoopVariant::kF1;
  const std::int64_t window = p.latent_window_size;
  const std::int64_t overlap = window * 4 - 3;
  const bool join = v.clip_pixels.defined();
  const std::vector<int> paddings =
      forward ? std::vector<int>(std::size_t(num_sections), 1) : video_paddings(num_sections);
  // Forward: oldest first (the clip, then each section). Backward: each section in front.
  at::Tensor history = host_float(v.latents);
  std::int64_t made = 0;  // new latent frames so far
  PixelTail tail;
  for (std::size_t si = 0; si < paddings.size(); ++si) {
    check_cancel(cb);
    const bool last = si + 1 == paddings.size();
    const int section = static_cast<int>(si);
    const sampling::SectionContext ctx =
        forward ? video_f1_context(v.latents, history, int(window), v.num_cleaned_frames)
                : video_context(v.latents, history, int(window), paddings[si], paddings[0],
                                v.num_cleaned_frames);
    if (cb.on_context) cb.on_context(section, ctx);
    SectionOutput out;
    out.section = section;
    out.resumed = section < resume.count;
    if (out.resumed) {
      sampler.skip_noise();
      out.new_latents = resumed_latents(resume.load(section), result.start_latent, window, si);
    } else {
      out.new_latents = host_float(sampler.sample(section, ctx, made));
      if (cb.on_sampled) cb.on_sampled(section, out.new_latents);
    }
    made += out.new_latents.size(2);
    history =
        forward ? at::cat({history, out.new_latents}, 2) : at::cat({out.new_latents, history}, 2);
    result.max_held_latent_frames = std::max(result.max_held_latent_frames, history.size(2));
    // The first section decodes what it made, later ones the newest two windows (as
    // FramePack-Studio does); the one next to the clip gets the clip's last latents in front.
    const std::int64_t n = tail.frames.defined() ? std::min(made, 2 * window) : made;
    at::Tensor latents =
        forward ? frames(history, history.size(2) - n, history.size(2)) : frames(history, 0, n);
    const bool seam = join && (forward ? si == 0 : last);
    std::int64_t seam_frames = 0;
    if (seam) {
      const std::int64_t s = seam_latents(v, window);
      latents = at::cat({frames(v.latents, v.latents.size(2) - s, v.latents.size(2)), latents}, 2);
      seam_frames = pixel_frames_for_latents(s);
    }
    const at::Tensor current = decode_section(vae, latents, p, cb);
    at::Tensor combined;
    std::int64_t combined_first = 0;
    if (forward) {
      combined = tail.frames.defined() ? soft_append_bcthw(tail.frames, current, overlap) : current;
      combined_first = tail.frames.defined() ? tail.first : 0;
    } else {
      combined = tail.frames.defined() ? soft_append_bcthw(current, tail.frames, overlap) : current;
      combined_first = tail.frames.defined() ? tail.first - (current.size(2) - overlap)
                                             : result.total_frames - current.size(2);
    }
    if (seam) {
      // The clip's last seam_frames frames and the decode's first ones show the same latents.
      combined = soft_append_bcthw(v.clip_pixels, combined, seam_frames);
      combined_first = v.clip_frames - v.clip_pixels.size(2);
    }
    hand_out(out, combined, combined_first, overlap, last, !forward, tail, result, cb);
  }
}

// The frames a video job makes: 4 per new latent frame, 3 fewer without the clip (the first
// new latent decodes to one frame), plus the clip's own when it is joined.
std::int64_t video_job_frames(const VideoInput& v, const SectionLoopParams& p, int sections) {
  const std::int64_t fresh = 4 * std::int64_t(p.latent_window_size) * sections;
  return v.clip_pixels.defined() ? v.clip_frames + fresh : fresh - 3;
}

void check_video(const VideoInput& v, const at::Tensor& latents) {
  if (latents.dim() != 5 || latents.size(0) != 1 || latents.size(2) < 1) {
    std::ostringstream o;
    o << "section loop: the clip's latents must be (1, C, n, h, w), got " << latents.sizes();
    throw Error(o.str());
  }
  const at::Tensor& c = v.clip_pixels;
  if (c.defined() &&
      (c.dim() != 5 || c.size(1) != 3 || c.size(2) < 1 || c.size(2) > v.clip_frames ||
       c.size(3) != latents.size(3) * 8 || c.size(4) != latents.size(4) * 8)) {
    std::ostringstream o;
    o << "section loop: the clip's pixels " << c.sizes() << " do not match its latents "
      << latents.sizes();
    throw Error(o.str());
  }
}

}  // namespace

int section_count(const SectionLoopParams& params) {
  if (params.num_sections > 0) return params.num_sections;
  return total_latent_sections(params.total_seconds, params.latent_window_size);
}

at::Tensor encode_start_latent(const Vae& vae, const at::Tensor& image, const VaeTiling& tiling) {
  const memory::OnDeviceScope device;
  // FramePack's vae_encode: encode, take the latent, times the scaling factor on the VAE's
  // device and dtype; the loop then keeps it as CPU float32 (`.to(history_latents)`).
  const VaePosterior posterior = vae.encode(image, tiling);
  return host_float(posterior.mode() * vae.config().scaling_factor);
}

at::Tensor decode_latents(const Vae& vae, const at::Tensor& latents, const VaeTiling& tiling) {
  return vae.decode(latents / vae.config().scaling_factor, tiling).to(at::kCPU);
}

namespace {

// run_section_loop for a video job: the clip's last latent is the start latent (as
// FramePack-Studio sets it); no end frame. A resume takes the clip's latents encoded again.
SectionLoopResult run_video_loop(PackedTransformer& transformer, const Vae& vae,
                                 const SectionLoopInputs& inputs, const SectionLoopParams& params,
                                 const SectionLoopCallbacks& callbacks) {
  const memory::HostScope host;
  const at::Tensor latents = host_float(inputs.video.latents);
  check_video(inputs.video, latents);
  SectionLoopResult result;
  result.num_sections = section_count(params);
  check_cancel(callbacks);
  result.start_latent = frames(latents, latents.size(2) - 1, latents.size(2)).clone();
  if (callbacks.on_start_latent) callbacks.on_start_latent(result.start_latent);
  SectionSampler sampler(transformer, inputs, params, callbacks, latents.size(3), latents.size(4),
                         result.num_sections);
  result.total_frames = video_job_frames(inputs.video, params, result.num_sections);
  VideoInput v = inputs.video;
  v.latents = latents;
  run_video(sampler, vae, v, params, callbacks, result.num_sections, inputs.resume_sections,
            result);
  return result;
}

}  // namespace

SectionLoopResult run_section_loop(PackedTransformer& transformer, const Vae& vae,
                                   const SectionLoopInputs& inputs, const SectionLoopParams& params,
                                   const SectionLoopCallbacks& callbacks) {
  check_inputs(inputs, params);
  if (inputs.video.defined()) return run_video_loop(transformer, vae, inputs, params, callbacks);
  // The loop's own state is on the host, as FramePack keeps it (history latents and pixels on
  // the CPU): sampling and decoding mark their device work themselves (sample_hunyuan.cpp,
  // decode_section).
  const memory::HostScope host;
  SectionLoopResult result;
  result.num_sections = section_count(params);
  check_cancel(callbacks);
  result.start_latent = inputs.start_latent.defined()
                            ? host_float(inputs.start_latent)
                            : encode_start_latent(vae, inputs.start_image, params.tiling);
  check_start_latent(result.start_latent);
  if (inputs.end_latent.defined() || inputs.end_image.defined()) {
    // Encoded like the start image (FramePack-Studio: vae_encode of the end frame).
    result.end_latent = inputs.end_latent.defined()
                            ? host_float(inputs.end_latent)
                            : encode_start_latent(vae, inputs.end_image, params.tiling);
    check_start_latent(result.end_latent);
    if (!result.end_latent.sizes().equals(result.start_latent.sizes())) {
      std::ostringstream o;
      o << "section loop: the end latent " << result.end_latent.sizes()
        << " does not match the start latent " << result.start_latent.sizes();
      throw Error(o.str());
    }
  }
  const at::Tensor& start = result.start_latent;
  if (callbacks.on_start_latent) callbacks.on_start_latent(start);

  SectionSampler sampler(transformer, inputs, params, callbacks, start.size(3), start.size(4),
                         result.num_sections);
  // Both loops make 1 + 4 * (window * sections) frames: the start latent and every window.
  result.total_frames =
      pixel_frames_for_latents(std::int64_t(params.latent_window_size) * result.num_sections + 1);
  if (params.variant == LoopVariant::kF1) {
    run_f1(sampler, vae, start, params, callbacks, result.num_sections, inputs.resume_sections,
           result);
  } else {
    run_original(sampler, vae, start, params, callbacks, result.num_sections,
                 inputs.resume_sections, result);
  }
  return result;
}

void VideoAssembler::add(const SectionOutput& s) {
  latents_.push_back(s.new_latents);
  if (s.final_pixels.size(2) > 0) finals_.emplace_back(s.first_final_frame, s.final_pixels);
  tail_ = s.tail_pixels;
  tail_first_ = s.first_tail_frame;
}

at::Tensor VideoAssembler::video_so_far() const {
  std::vector<std::pair<std::int64_t, at::Tensor>> parts = finals_;
  if (tail_.defined()) parts.emplace_back(tail_first_, tail_);
  if (parts.empty()) return at::Tensor();
  std::sort(parts.begin(), parts.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<at::Tensor> in_order;
  for (const auto& p : parts) in_order.push_back(p.second);
  return at::cat(in_order, 2);
}

at::Tensor VideoAssembler::history_latents(LoopVariant variant,
                                           const at::Tensor& start_latent) const {
  // The original loop makes the video backwards (its last section carries the start latent);
  // F1 appends after the start latent.
  std::vector<at::Tensor> parts;
  if (variant == LoopVariant::kOriginal) {
    parts.assign(latents_.rbegin(), latents_.rend());
  } else {
    parts.push_back(start_latent);
    parts.insert(parts.end(), latents_.begin(), latents_.end());
  }
  if (parts.empty()) return at::Tensor();
  return at::cat(parts, 2);
}

std::int64_t VideoAssembler::frames_so_far() const {
  std::int64_t n = tail_.defined() ? tail_.size(2) : 0;
  for (const auto& f : finals_) n += f.second.size(2);
  return n;
}

ResumedSections ResumedSections::of(std::vector<at::Tensor> latents) {
  ResumedSections r;
  r.count = static_cast<int>(latents.size());
  r.load = [all = std::move(latents)](int section) { return all.at(std::size_t(section)); };
  return r;
}

}  // namespace framesmith::pipeline
