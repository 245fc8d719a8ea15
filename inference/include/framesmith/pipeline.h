// The engine's one entry point for generation: a request struct with FramePack's defaults, plain
// callbacks, an atomic cancel flag, and a status at the boundary (no exceptions escape).
// Plain C++: app/ and ui/ include this; torch stays inside the engine.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framesmith/events.h"
#include "framesmith/model_set.h"

namespace framesmith {

// RGB8 frames, row-major, no padding: count × height × width × 3 bytes.
struct Frames {
  int width = 0;
  int height = 0;
  int count = 0;
  std::vector<std::uint8_t> rgb;
  const std::uint8_t* frame(int i) const {
    return rgb.data() + std::size_t(i) * width * height * 3;
  }
};

// Reuse of the transformer's work between sampler steps: FramePack's TeaCache (its default),
// FramePack-Studio's MagCache, or none (every step computes).
enum class StepCache { kNone, kTeaCache, kMagCache };
const char* to_string(StepCache c);  // "none", "teacache", "magcache"
// "none" / "teacache" / "magcache"; Error for anything else.
StepCache parse_step_cache(const std::string& text);

// A LoRA file and its strength (negative allowed): models/lora.h reads it.
struct LoraSpec {
  std::string path;
  double strength = 1.0;
};

// Whether a job's models stay loaded for the next job (the studio) or go with it (one-job
// programs: the CLIs). Warm: framesmith/pipeline.h's warm_models() lists what is kept.
enum class ModelReuse { kLoadPerJob = 1, kKeepWarm };

// Where a video job's clip came from, kept in its job file (its frames are not kept: the job
// file and a resume read them again from `path`).
struct VideoSource {
  std::string path;
  double fps = 30.0;  // the clip's frame rate: the video made is written at it
  // The clip as it was decoded: a resume checks that the file still holds the same.
  int frames = 0, width = 0, height = 0;
};

struct GenerationRequest {
  std::string model_dir;  // diffusers-layout folder or "hf"
  TransformerVariant variant = TransformerVariant::kOriginal;

  Frames image;  // the start image (count 1), any size
  // Optional end image (FramePack-Studio's "Original with Endframe"; the original model only):
  // cropped to the start image's bucket, encoded like it, and, times end_frame_strength, the
  // clean "post" latent of the first section sampled (the video's last). count 0: none.
  Frames end_image;
  double end_frame_strength = 1.0;  // 0..1
  // Video extension (FramePack-Studio's "Video" with the original variant, its sections sampled
  // from the far end back towards the clip, and "Video F1", forwards): the clip to continue,
  // every frame as decoded (any size: each is cropped to the bucket of that size, as the start
  // image is). The clip's last frames are encoded as the history, its first encoded frame is the
  // picture the image encoder sees (`image` is not used), and the video made is the whole clip
  // followed by `seconds` of new frames, joined without a seam. count 0: none.
  Frames input_video;
  VideoSource input_video_source;
  // FramePack-Studio's "adherence to video" (num_cleaned_frames): 1..10 of the clip's and the
  // newest latents as the 1x context.
  int video_context_frames = 5;
  // Timed prompts: the section at each change of prompt gets 1/blend_sections of the new prompt
  // mixed into the previous one (FramePack-Studio's blending); 0: none.
  int blend_sections = 0;
  // FramePack-Studio's timestamped prompts work here: "[0s: a cat sits] [2s: the cat jumps]".
  std::string prompt;
  std::string negative_prompt;
  std::string conditioning_file;  // optional: embeddings instead of encoding the prompt

  double seconds = 5.0;  // video length
  std::uint64_t seed = 31337;
  int steps = 25;
  double distilled_cfg = 10.0;  // gs
  double cfg = 1.0;             // real CFG (1 = off)
  double cfg_rescale = 0.0;     // rs
  int latent_window = 9;
  int resolution = 640;  // bucket family
  StepCache cache = StepCache::kTeaCache;
  double teacache_threshold = 0.15;  // FramePack's rel_l1_thresh
  double magcache_threshold = 0.1;   // FramePack-Studio's defaults
  int magcache_max_skips = 2;
  double magcache_retention = 0.25;  // the first quarter of the steps always computes
  double shift = 0.0;                // 0: resolution-dependent flux shift
  std::vector<LoraSpec> loras;       // applied in order to the transformer
  ModelReuse model_reuse = ModelReuse::kLoadPerJob;

  std::string device = "cpu";          // "cpu", "cuda", "cuda:N"
  std::int64_t vram_budget_bytes = 0;  // 0: the device's own size
  std::int64_t preserved_memory_bytes = 6LL << 30;

  // The job folder (optional; framesmith/job_folder.h lists what it holds): parameters, the
  // cropped start image, the embeddings, the start latent and every finished section's latents,
  // each written atomically before the next section starts. Empty: nothing is kept.
  std::string job_dir;
  // Continue the job saved in job_dir instead of starting it: its saved parameters and start
  // image are used (this request's device, budgets and model_dir, when not empty, replace the
  // saved ones; its other fields are ignored), finished sections are not sampled again, and the
  // video is the one an uninterrupted run with the same seed makes.
  bool resume = false;
};

enum class StatusCode { kOk = 1, kCancelled, kOutOfMemory, kBadInput, kFailed };
const char* to_string(StatusCode s);

struct Progress {
  std::string phase;  // "text", "image", "vae encode", "sampling", "decode"
  int section = 0;    // 1-based; 0 outside the section loop
  int sections = 0;
  int step = 0;  // 1-based within the section
  int steps = 0;
  double elapsed_s = 0.0;
};

// A section's latents are final and saved in the job folder (before the next section starts).
struct SectionSaved {
  int section = 0;  // 1-based, in generation order
  int sections = 0;
  // Latent frames generated so far, the start latent included when it is part of the video
  // (FramePack's total_generated_latent_frames, which names its partial videos).
  std::int64_t latent_frames = 0;
  std::string latents_path;  // empty without a job folder
};

// One section's share of the video (RGB8, in video order): the frames no later section changes,
// and the tail the next section still blends into (the last latent_window * 4 - 3 frames where
// sections meet). A client that writes the final frames as they come and shows the tail holds
// a fixed amount of video whatever the length. The original variant makes its video from the
// end backwards, so its chunks arrive last part first: place them by frame index.
struct VideoChunk {
  int section = 0;  // 1-based, in generation order
  int sections = 0;
  // Taken from the job folder by a resume and decoded again (a resume hands out the whole video
  // again, so that a client can rebuild what the killed job was writing).
  bool resumed = false;
  Frames final_frames;                 // may be empty (the original's first section)
  std::int64_t first_final_frame = 0;  // index in the finished video
  Frames tail;                         // empty after the last section
  std::int64_t first_tail_frame = 0;
  std::int64_t total_frames = 0;  // frames of the finished video
};

struct GenerationCallbacks {
  std::function<void(const Progress&)> on_progress;
  std::function<void(const Frames& preview, const Progress&)> on_preview;  // per step
  // After each section's decode (resumed sections included): its final frames and the tail.
  // When set, GenerationResult::video stays empty: the engine keeps no whole video.
  std::function<void(const VideoChunk& chunk)> on_chunk;
  // Once, before any model runs: the start image as cropped to its bucket (count 1).
  std::function<void(const Frames& image)> on_input_image;
  // After each new section's latents are saved (also without a job folder), before on_chunk.
  std::function<void(const SectionSaved&)> on_section_saved;
  std::function<void(const Event&)> on_event;
  const std::atomic<bool>* cancel = nullptr;  // checked between steps and between decode chunks
};

struct GenerationResult {
  StatusCode status = StatusCode::kFailed;
  std::string message;  // one readable sentence when status != kOk
  // What was made (possibly partial when stopped); empty when on_chunk took the frames.
  Frames video;
  int sections_done = 0;
  int sections_total = 0;
  int sections_resumed = 0;  // sections taken from the job folder instead of being sampled
  Frames input_image;        // the start image as cropped and used
};

GenerationResult generate(const GenerationRequest& request, const GenerationCallbacks& callbacks);

// What jobs with ModelReuse::kKeepWarm left loaded (thread-safe; a job running meanwhile keeps
// what it uses even when it is unloaded here). `host_bytes` is host memory beyond mapped files
// (what the budget counts), `mapped_bytes` the mapped checkpoint pages it reads.
struct WarmModel {
  std::string kind;         // "transformer", "vae", "text encoders", "image embedding", ...
  std::string description;  // the folder (and dtype, device) it was loaded for
  std::int64_t host_bytes = 0;
  std::int64_t mapped_bytes = 0;
  double idle_s = 0;  // since a job last used it
};
std::vector<WarmModel> warm_models();
// Drops every warm model and the prompt embeddings kept for later jobs.
void unload_warm_models();
// The host-memory budget of warm models (default: half of the host's memory); past it the least
// recently used go. A negative value restores the default.
void set_warm_models_budget(std::int64_t host_bytes);

// Version of the engine and of the LibTorch it was built against.
std::string engine_version();

}  // namespace framesmith
