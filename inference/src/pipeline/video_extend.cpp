#include "pipeline/video_extend.h"

#include <algorithm>
#include <vector>

#include "framesmith/error.h"
#include "pipeline/section_loop.h"
#include "pipeline/section_schedule.h"

namespace framesmith::pipeline {
namespace {

// Python's t[:, :, a:b] along time, with its clamping of negative and out-of-range bounds.
at::Tensor slice_t(const at::Tensor& t, std::int64_t a, std::int64_t b) {
  const std::int64_t n = t.size(2);
  auto clamp = [n](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + n : i, 0, n); };
  const std::int64_t s = clamp(a), e = std::max(s, clamp(b));
  return t.narrow(2, s, e - s);
}

// `t` repeated along time up to `frames` frames (FramePack-Studio pads short contexts so).
at::Tensor repeat_to(const at::Tensor& t, std::int64_t frames) {
  if (t.size(2) >= frames) return t;
  const std::int64_t times = (frames + t.size(2) - 1) / t.size(2);
  return t.repeat({1, 1, times, 1, 1}).narrow(2, 0, frames);
}

// Indices 0..sum-1 split into consecutive runs of `sizes`, each (1, n).
std::vector<at::Tensor> split_indices(const std::vector<std::int64_t>& sizes) {
  std::int64_t total = 0;
  for (std::int64_t s : sizes) total += s;
  const at::Tensor all = at::arange(total, at::kLong).unsqueeze(0);
  std::vector<at::Tensor> out;
  std::int64_t at = 0;
  for (std::int64_t s : sizes) {
    out.push_back(all.narrow(1, at, s));
    at += s;
  }
  return out;
}

// At least two frames (the last repeated), as video_f1_... pads its 2x and 4x context.
at::Tensor at_least_two(const at::Tensor& t) {
  if (t.size(2) >= 2) return t;
  const at::Tensor longer = at::cat({t, slice_t(t, -1, t.size(2))}, 2);
  return longer.narrow(2, 0, std::min<std::int64_t>(2, longer.size(2)));
}

}  // namespace

std::int64_t frames_to_encode(std::int64_t frames) {
  constexpr std::int64_t kMaxContextLatents = 27;
  return std::min(frames, kMaxContextLatents * 4) / 4 * 4;
}

at::Tensor encode_video_latents(const Vae& vae, const at::Tensor& clip, std::int64_t batch,
                                const VaeTiling& tiling) {
  if (clip.dim() != 5 || clip.size(2) < 1) throw Error("video extension: the clip has no frames");
  std::vector<at::Tensor> parts;
  for (std::int64_t i = 0; i < clip.size(2); i += batch)
    parts.push_back(encode_start_latent(vae, slice_t(clip, i, i + batch).contiguous(), tiling));
  return at::cat(parts, 2);
}

std::vector<int> video_paddings(int sections) {
  std::vector<int> p;
  if (sections > 4) {
    p.push_back(3);
    for (int i = 0; i < sections - 3; ++i) p.push_back(2);
    p.push_back(1);
    p.push_back(0);
  } else {
    for (int i = sections - 1; i >= 0; --i) p.push_back(i);
  }
  return p;
}

sampling::SectionContext video_context(const at::Tensor& video_latents, const at::Tensor& history,
                                       int window, int padding, int first_padding,
                                       int num_cleaned_frames) {
  const bool start_of_video = padding == 0;  // the generated part's start: next to nothing
  const bool end_of_video = padding == first_padding;  // nearest the clip
  const std::int64_t available = start_of_video ? video_latents.size(2) : history.size(2);
  std::int64_t clean = num_cleaned_frames > 1 ? std::max(0, num_cleaned_frames - 1) : 1;
  if (start_of_video) clean = 1;  // avoids jump cuts when the clip differs much
  const std::int64_t pre = clean;
  const std::int64_t n2x =
      available > pre + 1
          ? std::min<std::int64_t>(2, std::max<std::int64_t>(1, available - pre - 1))
          : 1;
  const std::int64_t n4x =
      available > pre + n2x
          ? std::min<std::int64_t>(16, std::max<std::int64_t>(1, available - pre - n2x))
          : 1;
  const std::int64_t context = std::min(n2x + n4x, available - pre);
  const std::int64_t post = clean;  // without an end frame
  const std::int64_t pad = std::int64_t{padding} * window;
  const std::vector<at::Tensor> idx = split_indices({pre, pad, window, post, n2x, n4x});
  sampling::SectionContext ctx;
  ctx.clean_latent_indices = at::cat({idx[0], idx[3]}, 1);
  ctx.latent_indices = idx[2];
  ctx.clean_latent_indices_2x = idx[4];
  ctx.clean_latent_indices_4x = idx[5];

  const at::Tensor frames =
      context > 0 ? slice_t(history, -(context + pre), -pre) : slice_t(history, 0, 1);
  if (frames.size(2) >= n4x + n2x) {
    ctx.clean_latents_4x = frames.narrow(2, 0, n4x);
    ctx.clean_latents_2x = frames.narrow(2, n4x, n2x);
  } else {
    ctx.clean_latents_4x = ctx.clean_latents_2x = slice_t(history, 0, 1);
  }
  at::Tensor before =
      slice_t(video_latents, -std::min(clean, video_latents.size(2)), video_latents.size(2));
  // The first section sampled sits next to the clip's end: its "post" context is zeros.
  at::Tensor after = end_of_video
                         ? at::zeros_like(slice_t(video_latents, -1, video_latents.size(2)))
                         : slice_t(history, 0, std::min(clean, history.size(2)));
  ctx.clean_latents = at::cat({repeat_to(before, pre), repeat_to(after, post)}, 2);
  return ctx;
}

sampling::SectionContext video_f1_context(const at::Tensor& video_latents,
                                          const at::Tensor& history, int window,
                                          int num_cleaned_frames) {
  const at::Tensor start = slice_t(video_latents, -1, video_latents.size(2));
  const std::int64_t available = history.size(2);
  const std::int64_t max_pixels = std::min<std::int64_t>(window * 4 - 3, available * 4);
  const std::int64_t latents = std::max<std::int64_t>(1, (max_pixels + 3) / 4);
  std::int64_t clean = num_cleaned_frames > 1 ? std::max(0, num_cleaned_frames - 1) : 0;
  clean = available > 2 ? std::min(clean, available - 2) : 0;
  const std::int64_t n2x =
      available > clean + 1
          ? std::min<std::int64_t>(2, std::max<std::int64_t>(1, available - clean - 1))
          : 0;
  const std::int64_t n4x =
      available > clean + n2x
          ? std::min<std::int64_t>(16, std::max<std::int64_t>(1, available - clean - n2x))
          : 0;
  const std::int64_t context = std::min(n4x + n2x + clean, available);
  const std::vector<at::Tensor> idx = split_indices({1, n4x, n2x, clean, latents});
  sampling::SectionContext ctx;
  ctx.clean_latent_indices = at::cat({idx[0], idx[3]}, 1);
  ctx.clean_latent_indices_4x = idx[1];
  ctx.clean_latent_indices_2x = idx[2];
  ctx.latent_indices = idx[4];

  const at::Tensor fallback = slice_t(history, 0, 2);
  at::Tensor c4 = fallback, c2 = fallback, c1 = fallback;
  if (context > 0 && n4x + n2x + clean > 0) {
    const at::Tensor frames = slice_t(history, -context, history.size(2));
    std::int64_t at = 0;
    if (n4x > 0) {
      c4 = at_least_two(frames.narrow(2, at, n4x));
      at += n4x;
    } else {
      c4 = at_least_two(fallback);
    }
    c2 = at_least_two(n2x > 0 ? frames.narrow(2, at, n2x) : fallback);
    at += n2x;
    c1 = clean > 0 ? frames.narrow(2, at, clean) : fallback;
  }
  ctx.clean_latents_4x = c4;
  ctx.clean_latents_2x = c2;
  ctx.clean_latents = at::cat({start, c1}, 2);
  return ctx;
}

VideoExtendResult extend_video(PackedTransformer& transformer, const Vae& vae,
                               const at::Tensor& clip,
                               const sampling::HunyuanConditioning& conditioning,
                               const VideoExtendParams& p, const VideoExtendCallbacks& cb) {
  if (p.sections < 1) throw Error("video extension: at least one section");
  const bool forward = p.direction == ExtendDirection::kForward;
  VideoExtendResult r;
  SectionLoopInputs in;
  in.conditioning = conditioning;
  in.video.latents = r.video_latents = encode_video_latents(vae, clip, 16, p.tiling);
  in.video.num_cleaned_frames = p.num_cleaned_frames;
  SectionLoopParams sp;
  sp.variant = forward ? LoopVariant::kF1 : LoopVariant::kOriginal;
  sp.num_sections = p.sections;
  sp.latent_window_size = p.latent_window;
  sp.steps = p.steps;
  sp.gs = p.gs;
  sp.cfg = p.cfg;
  sp.rs = p.rs;
  sp.seed = p.seed;
  sp.shift = p.shift;
  sp.sample_dtype = p.sample_dtype;
  sp.transformer_device = p.device;
  sp.tiling = p.tiling;
  SectionLoopCallbacks lcb;
  lcb.on_context = cb.on_context;
  std::vector<at::Tensor> made;  // generation order
  lcb.on_sampled = [&](int section, const at::Tensor& latents) {
    made.push_back(latents);
    if (cb.on_sampled) cb.on_sampled(section, latents);
  };
  VideoAssembler pixels;
  lcb.on_section = [&](const SectionOutput& out) { pixels.add(out); };
  run_section_loop(transformer, vae, in, sp, lcb);
  if (!forward) std::reverse(made.begin(), made.end());
  r.new_latents = at::cat(made, 2);
  r.pixels = pixels.video_so_far();
  return r;
}

}  // namespace framesmith::pipeline
