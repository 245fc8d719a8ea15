// FramePack's section loops: the worker of demo_gradio.py (original: sections generated
// backwards in time, the start image's latent as the fixed first frame) and of demo_gradio_f1.py
// (F1: sections generated forwards, appended). Each section samples `window` latent frames with
// UniPC over the packed transformer, conditioned on clean latents taken from the history at 1x,
// 2x and 4x compression, then decodes the newest latents and blends them into the video.
//
// The text and image encoders are not run here: the caller passes their outputs.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/section_schedule.h"
#include "sampling/sample_hunyuan.h"

namespace framesmith::pipeline {

enum class LoopVariant { kOriginal = 1, kF1 };

// FramePack's worker parameters (its UI defaults).
struct SectionLoopParams {
  LoopVariant variant = LoopVariant::kOriginal;
  double total_seconds = 5.0;  // -> total_latent_sections(total_seconds, latent_window_size)
  int num_sections = 0;        // > 0: this many sections, total_seconds ignored
  int latent_window_size = 9;  // latent frames per section
  int steps = 25;
  double gs = 10.0;  // distilled guidance
  double cfg = 1.0;  // real guidance; != 1 runs the negative prompt too
  double rs = 0.0;   // guidance rescale
  std::uint64_t seed = 31337;
  std::optional<double> shift;  // fixed flow shift; default: FramePack's resolution-dependent mu
  // FramePack-Studio's "Original with Endframe": the end latent times this is the clean "post"
  // latent of the first section sampled (the last in time); 1 = the end image as it is.
  double end_frame_strength = 1.0;
  bool use_teacache = false;
  double teacache_threshold = 0.15;
  // FramePack-Studio's MagCache (when TeaCache is off), with the calibration of the loop's variant
  // for the picture's size and the step count.
  bool use_magcache = false;
  MagCacheSettings magcache;
  // What x, timestep and guidance are cast to for the transformer (FramePack: bfloat16) and the
  // transformer's device (clean latents and conditioning are moved there once per section).
  at::ScalarType sample_dtype = at::kBFloat16;
  at::Device transformer_device = at::kCPU;
  VaeTiling tiling;  // decode (and start-image encode); default = diffusers' temporal tiling
};

// Saved sections for a resume: how many, and section i's latents (0-based), read when the loop
// reaches it, so that resuming a long job holds one section's latents at a time.
struct ResumedSections {
  int count = 0;
  std::function<at::Tensor(int section)> load;
  // From latents already in memory (tests, callers that have them).
  static ResumedSections of(std::vector<at::Tensor> latents);
};

// An input clip to continue: its last frames' latents as the history every section's context
// is cut from (pipeline/video_extend.h: video_context, video_f1_context).
struct VideoInput {
  // (1, C, n, h, w), scaled: encode_video_latents of the clip's last frames_to_encode frames.
  at::Tensor latents;
  int num_cleaned_frames = 5;  // FramePack-Studio's "adherence to video" (its default)
  // The clip's last frames at the latents' size, (1, 3, t, H, W) in [-1, 1], and the number of
  // frames of the whole clip (clip_frames >= t). Given: the video made is the clip followed by
  // the new frames, and the section next to the clip is decoded with the clip's last latents in
  // front, its first frames blended into the clip's last ones as soft_append_bcthw blends
  // sections (no seam where the two meet). Frame indices count the whole clip; the frames before
  // clip_pixels are never handed out (the caller has them). Undefined: the new frames alone, as
  // FramePack-Studio's loop (and the reference case) makes them.
  at::Tensor clip_pixels;
  std::int64_t clip_frames = 0;
  bool defined() const { return latents.defined(); }
};

struct SectionLoopInputs {
  // (1, 16, 1, h, w), already multiplied by the VAE's scaling factor. When undefined,
  // `start_image` is encoded: posterior mode (FramePack samples; the mode makes the seed decide
  // everything) times the scaling factor.
  at::Tensor start_latent;
  at::Tensor start_image;  // (1, 3, 1, H, W) in [-1, 1]
  // Optional end frame (original loop only), as the start: a latent, or an image to encode.
  at::Tensor end_latent;
  at::Tensor end_image;
  // Negative prompt: used only when cfg != 1 (FramePack feeds zeros otherwise).
  sampling::HunyuanConditioning conditioning;
  // Timed prompts: when set, each section is conditioned on what this returns for it (its index
  // in generation order and FramePack's total_generated_latent_frames before it) instead of
  // `conditioning`, which still gives the shapes.
  std::function<sampling::HunyuanConditioning(int section, std::int64_t generated_latent_frames)>
      section_conditioning;
  // Resuming a job: the first sections' latents, first section first, exactly as on_section
  // passed them. They are not sampled again: their noise is drawn and discarded (so the seeded
  // generator is where an uninterrupted run has it) and the video is decoded from them as it was
  // (so the blend is the same). Give the saved start latent with them.
  ResumedSections resume_sections;
  // FramePack-Studio's "Video" (original variant: sections sampled backwards from the far end)
  // and "Video F1" (forwards) jobs: when `video.latents` is defined, the sections continue an
  // input clip instead of starting from a picture (start_latent and the end frame unused; a
  // resume gives the clip's latents encoded again with the saved sections).
  VideoInput video;
};

// One section's share of the video, in video order. FramePack's soft_append_bcthw blends only the
// `latent_window * 4 - 3` frames where two sections meet, so every other frame is final as soon
// as its section is blended in: the loop hands those out and keeps only the tail. The original
// loop makes the video from its end backwards, so its chunks arrive last part first; place them
// by first_final_frame.
struct SectionOutput {
  int section = 0;       // 0-based, in generation order
  bool resumed = false;  // taken from SectionLoopInputs::resume_sections, decoded again
  // (1, C, window (+1 on the original's last section: the start latent), h, w), CPU float32.
  at::Tensor new_latents;
  at::Tensor final_pixels;             // (1, 3, n, H, W) in [-1, 1]; n may be 0
  std::int64_t first_final_frame = 0;  // index of final_pixels' first frame in the whole video
  at::Tensor tail_pixels;              // still to be blended; 0 frames after the last section
  std::int64_t first_tail_frame = 0;
  std::int64_t total_frames = 0;  // frames of the finished video
};

struct StepProgress {
  int section = 0;  // 0-based, in generation order
  int num_sections = 0;
  int step = 0;  // 0-based
  int num_steps = 0;
  std::int64_t generated_latent_frames = 0;  // before this section
};

struct SectionLoopCallbacks {
  // After every sampler step; `preview` is FramePack's vae_decode_fake picture of the current x0
  // prediction, uint8 (H, window * W, 3) (computed only when this callback is set).
  std::function<void(const StepProgress&, const at::Tensor& preview_rgb8)> on_step;
  // After each section's decode, resumed sections included (SectionOutput::resumed): the frames
  // that just became final and the tail the next section still blends into. The loop keeps
  // nothing else of the video, so a client that wants the whole video collects the chunks
  // (VideoAssembler).
  std::function<void(const SectionOutput&)> on_section;
  // Right after a section is sampled, before its decode: its new latents (as on_section gets
  // them), so that a job that fails while decoding keeps what it sampled. Not for resumed ones.
  std::function<void(int section, const at::Tensor& new_latents)> on_sampled;
  // Once, before the first section: the start latent (CPU float32, scaled), e.g. to save it with
  // the job.
  std::function<void(const at::Tensor& start_latent)> on_start_latent;
  // Before each section is sampled (resumed ones included): the context it samples with, for
  // checks against the reference and for debugging.
  std::function<void(int section, const sampling::SectionContext& ctx)> on_context;
  // Checked before each section and each sampler step; when set the loop throws
  // framesmith::Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  // Wraps each step's flow model (memory governor retry); optional.
  std::function<sampling::FlowModel(sampling::FlowModel)> wrap_model;
  // Replaces decode_latents (the memory governor's chunked decode): scaled latents (CPU float32)
  // -> pixels (CPU, in [-1, 1]) as decode_latents would give them; optional.
  std::function<at::Tensor(const at::Tensor& scaled_latents)> decode;
};

struct SectionLoopResult {
  at::Tensor start_latent;  // (1, 16, 1, h, w) CPU float32, scaled
  at::Tensor end_latent;    // as start_latent, when the job has an end frame
  int num_sections = 0;
  std::int64_t total_frames = 0;
  // The most the loop held between sections: latent frames of history (the context and the next
  // decode need a fixed number) and pixel frames (a decoded section blended with the tail).
  // Neither grows with the number of sections.
  std::int64_t max_held_latent_frames = 0;
  std::int64_t max_held_pixel_frames = 0;
};

// Collects the chunks on_section hands out into the whole video (and the whole latent history),
// for callers that want it in memory: reference parity, tests, generate() without a streaming
// client. Memory grows with the video here, by the caller's choice.
class VideoAssembler {
 public:
  void add(const SectionOutput& s);
  // Every final frame so far plus the current tail, in video order (FramePack's video so far).
  at::Tensor video_so_far() const;
  // The latents of every section added, in video order, the start latent included
  // (FramePack's real_history_latents).
  at::Tensor history_latents(LoopVariant variant, const at::Tensor& start_latent) const;
  std::int64_t frames_so_far() const;

 private:
  std::vector<std::pair<std::int64_t, at::Tensor>> finals_;  // (first frame, pixels)
  std::vector<at::Tensor> latents_;                          // generation order
  at::Tensor tail_;
  std::int64_t tail_first_ = 0;
};

// The number of sections `params` asks for.
int section_count(const SectionLoopParams& params);

// Runs the whole loop. Throws Error for inconsistent inputs, Cancelled when cancelled.
SectionLoopResult run_section_loop(PackedTransformer& transformer, const Vae& vae,
                                   const SectionLoopInputs& inputs, const SectionLoopParams& params,
                                   const SectionLoopCallbacks& callbacks = {});

// FramePack's start latent: vae.encode(image).mode() * scaling_factor, CPU float32.
at::Tensor encode_start_latent(const Vae& vae, const at::Tensor& image, const VaeTiling& tiling);

// FramePack's vae_decode: decode(latents / scaling_factor), moved to the CPU.
at::Tensor decode_latents(const Vae& vae, const at::Tensor& latents, const VaeTiling& tiling);

}  // namespace framesmith::pipeline
