// generate(): the engine's boundary. Exceptions stop here and become a status and one sentence.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "io/safetensors.h"
#include "memory/governor.h"
#include "memory/oom_retry.h"
#include "memory/simulated_device.h"
#include "models/weights.h"
#include "pipeline/conditioning.h"
#include "pipeline/job_store.h"
#include "pipeline/section_loop.h"
#include "pipeline/section_schedule.h"
#include "pipeline/video_extend.h"
#include "pipeline/warm_models.h"

namespace framesmith {

const char* to_string(StatusCode s) {
  switch (s) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kOutOfMemory:
      return "out of memory";
    case StatusCode::kBadInput:
      return "bad input";
    case StatusCode::kFailed:
      return "failed";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

// (1, 3, T, H, W) in [-1, 1] -> RGB8 frames, rounding as FramePack's save_bcthw_as_mp4 does:
// (x + 1) * 127.5, clipped, truncated to uint8.
Frames to_frames(const at::Tensor& pixels) {
  at::Tensor p = pixels.detach().to(at::kCPU).to(at::kFloat)[0];  // (3, T, H, W)
  at::Tensor u8 =
      ((p + 1.0) * 127.5).clamp(0, 255).to(at::kByte).permute({1, 2, 3, 0}).contiguous();
  Frames f;
  f.count = static_cast<int>(u8.size(0));
  f.height = static_cast<int>(u8.size(1));
  f.width = static_cast<int>(u8.size(2));
  f.rgb.resize(static_cast<std::size_t>(u8.numel()));
  std::memcpy(f.rgb.data(), u8.data_ptr(), f.rgb.size());
  return f;
}

Frames hw3_to_frames(const at::Tensor& hw3) {
  at::Tensor c = hw3.contiguous();
  Frames f;
  f.count = 1;
  f.height = static_cast<int>(c.size(0));
  f.width = static_cast<int>(c.size(1));
  f.rgb.resize(static_cast<std::size_t>(c.numel()));
  std::memcpy(f.rgb.data(), c.data_ptr(), f.rgb.size());
  return f;
}

at::Device parse_device(const std::string& d) {
  if (d == "cpu") return at::kCPU;
  if (d.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA())
      throw Error("device \"" + d + "\" asked for, but this build of Framesmith (LibTorch " +
                  std::string(compat::torch_version_string()) +
                  ") has no CUDA or no GPU is visible");
    at::Device device(d);
    // "cuda" is device 0 everywhere (probe, memory fraction and tensors alike), not whichever
    // device happens to be current.
    if (!device.has_index()) device.set_index(0);
    return device;
  }
  throw Error("unknown device \"" + d + "\"");
}

// Warm-model keys: every fact the object depends on, joined.
std::string warm_key(std::initializer_list<std::string> parts) {
  std::string k;
  for (const std::string& p : parts) k += p + "|";
  return k;
}

std::string dtype_name(at::ScalarType t) {
  return std::string(c10::toString(t));
}

class Job {
 public:
  Job(const GenerationRequest& r, const GenerationCallbacks& cb)
      : req_(r), cb_(cb), t0_(Clock::now()) {}

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

  void emit(EventType type, const std::string& phase, std::map<std::string, double> numbers = {},
            std::map<std::string, std::string> texts = {}) {
    if (!cb_.on_event) return;
    Event e;
    e.type = type;
    e.t_s = elapsed();
    e.phase = phase;
    e.numbers = std::move(numbers);
    e.texts = std::move(texts);
    deliver(e);
  }

  // Events come from the job thread and from the memory telemetry's sampler thread: one at a time.
  void deliver(const Event& e) {
    if (!cb_.on_event) return;
    std::lock_guard<std::mutex> lock(events_mutex_);
    cb_.on_event(e);
  }

  void progress(const std::string& phase, int section = 0, int sections = 0, int step = 0,
                int steps = 0) {
    Progress p{phase, section, sections, step, steps, elapsed()};
    if (cb_.on_progress) cb_.on_progress(p);
    emit(EventType::kProgress, phase,
         {{"section", section}, {"sections", sections}, {"step", step}, {"steps", steps}});
  }

  void check_cancel() const {
    if (cb_.cancel && cb_.cancel->load()) throw Cancelled();
  }

  // The pipeline, phase by phase (each below): FramePack's worker() in the order it runs.
  GenerationResult run();
  // A new section's events and on_section_saved (resumed sections were reported before).
  void section_done(const pipeline::SectionOutput& out, int sections,
                    const std::string& latents_path, std::int64_t latent_frames);
  void deliver_chunk(const pipeline::SectionOutput& out, int sections);
  // The video so far as RGB8, when no on_chunk client took it (empty otherwise).
  Frames assembled_video() const {
    const at::Tensor v = cb_.on_chunk ? at::Tensor() : assembler_.video_so_far();
    if (!v.defined()) return Frames();
    return seam_done_ ? with_clip_prefix(to_frames(v)) : to_frames(v);
  }
  // What the job made so far (finished sections' video, the cropped input): kept on failure.
  GenerationResult partial() const {
    GenerationResult r = result_;
    const memory::HostScope host;
    r.video = assembled_video();
    return r;
  }

 private:
  GenerationRequest req_;  // a copy: resuming replaces it with the job folder's request
  const GenerationCallbacks& cb_;
  Clock::time_point t0_;
  GenerationResult result_;
  std::mutex events_mutex_;
  // Without an on_chunk client: the whole video, for GenerationResult::video.
  pipeline::VideoAssembler assembler_;
  std::int64_t frames_so_far_ = 0;  // final frames handed out plus the current tail
  std::int64_t tail_frames_ = 0;

  void open_job();
  bool video_job() const { return video_; }
  void start_governor();
  void read_loras();
  void prepare_end_image();
  void plan_timed_prompts();
  void prepare_image();
  void prepare_video();
  void encode_video(pipeline::SectionLoopInputs& in);
  Frames with_clip_prefix(const Frames& from_seam) const;
  void encode_conditioning();
  pipeline::SectionLoopInputs load_models();
  void encode_start_latent(pipeline::SectionLoopInputs& in);
  pipeline::SectionLoopParams loop_params() const;
  pipeline::SectionLoopCallbacks loop_callbacks(int sections);

  // What the phases hand on, in the order they are made. Destroyed in reverse: the governor
  // lets go of the models (and the simulated device) before they are destroyed.
  at::Device device_ = at::kCPU;
  bool on_cuda_ = false;
  at::ScalarType transformer_dtype_ = at::kFloat, vae_dtype_ = at::kFloat;
  std::unique_ptr<pipeline::JobStore> store_;
  ModelSet models_;
  std::string vae_path_;
  memory::ComputeDevice compute_;
  std::unique_ptr<memory::SimulatedDeviceScope> simulated_;
  std::shared_ptr<PackedTransformer> transformer_;
  std::shared_ptr<Vae> vae_;
  std::unique_ptr<memory::Governor> governor_;
  memory::ModelFootprint footprint_;
  at::Tensor image_hw3_;  // the cropped start picture, host uint8 (H, W, 3)
  at::Tensor end_hw3_;    // the end picture cropped to the start's bucket; undefined: none
  // A video job's clip, every frame cropped to the bucket: host uint8 (T, H, W, 3). The frames
  // before the last `clip_tail_` go out unchanged with the chunk that joins the clip (the seam).
  at::Tensor clip_hw3_;
  bool video_ = false;
  std::int64_t clip_tail_ = 0;
  bool seam_done_ = false;
  sampling::HunyuanConditioning cond_;
  std::string latents_path_;                                  // the last saved section's latents
  std::shared_ptr<const LoraPatch> lora_patch_;               // null: no LoRA
  std::shared_ptr<const io::TensorStore> transformer_store_;  // opened by read_loras, else null
  std::optional<pipeline::PromptSchedule> schedule_;          // timed prompts only
  std::vector<sampling::PromptConditioning> timed_prompts_;   // schedule_->prompts()' encodings
  // ModelReuse::kKeepWarm: what was taken from the warm registry (for the notice).
  std::vector<std::string> reused_;
  bool warm() const { return req_.model_reuse == ModelReuse::kKeepWarm; }
  std::string image_key(const at::Tensor& hw3) const {
    return pipeline::content_key(hw3.data_ptr(), static_cast<std::size_t>(hw3.nbytes()));
  }
  void load_transformer_warm(bool mapped);
  void load_vae_warm();
  at::Tensor encode_latent_warm(const at::Tensor& hw3, const std::string& what,
                                const std::function<at::Tensor()>& encode);
};

// The request (or, resuming, the job folder's), the device, the job folder and the model set.
void Job::open_job() {
  if (req_.resume) req_ = pipeline::resumed_request(req_);
  validate_request(req_);
  video_ = req_.input_video.count > 0;
  const Frames& picture = video_job() ? req_.input_video : req_.image;
  if (picture.count < 1 || picture.width < 1 || picture.height < 1 ||
      picture.rgb.size() < std::size_t(picture.width) * picture.height * 3 * picture.count)
    throw Error(video_job() ? "the input video has no frames (or its pixel buffer is smaller "
                              "than its size says)"
                            : "no start image (or its pixel buffer is smaller than its size says)");
  device_ = parse_device(req_.device);
  on_cuda_ = device_.is_cuda();
  // FramePack's precisions on CUDA; float32 on the CPU (bf16 matmuls are slow there).
  transformer_dtype_ = on_cuda_ ? at::kBFloat16 : at::kFloat;
  vae_dtype_ = on_cuda_ ? at::kHalf : at::kFloat;
  {
    // Creates the job folder (fresh job) or reads what the stopped job saved (resume): host data.
    const memory::HostScope host;
    store_ = std::make_unique<pipeline::JobStore>(req_);
  }
  models_ = locate_model_set(req_.model_dir, req_.variant == TransformerVariant::kF1
                                                 ? TransformerVariant::kF1
                                                 : TransformerVariant::kOriginal);
  for (Component c : {Component::kTransformer, Component::kVae})
    if (!models_.find(c))
      throw Error(std::string("the model set has no ") + folder_name(c) + "/ (" +
                  models_.description + ")");
  vae_path_ = models_.find(Component::kVae)->path;
}

// Every LoRA file is read and checked against the transformer's checkpoint before anything is
// encoded or sampled, so a bad file costs seconds, not a text encode; the factors are kept (a few
// MB per file) and added to each weight as it is converted (models/lora.h).
void Job::read_loras() {
  if (req_.loras.empty()) return;
  const memory::HostScope host;  // the factors live on the host; placements copy them
  // Opened once: load_models builds the transformer on this mapping.
  transformer_store_ = std::make_shared<const io::TensorStore>(
      io::TensorStore::open(models_.find(Component::kTransformer)->path));
  std::vector<LoraFileReport> reports;
  lora_patch_ = std::make_shared<const LoraPatch>(
      build_lora_patch(req_.loras, *transformer_store_, &reports));
  // With a device memory the weights are converted at each placement (resident modules once,
  // streamed ones every time they come in); the plain CPU converts them once, at load.
  const std::string applied = compute_.has_device_memory()
                                  ? "added to each module's weights as it is placed"
                                  : "merged into the weights at load";
  for (const LoraFileReport& r : reports)
    emit(EventType::kLora, "loading",
         {{"strength", r.strength},
          {"rank", r.rank},
          {"modules", r.modules},
          {"weights", r.weights},
          {"unmatched", double(r.unmatched.size())}},
         {{"file", r.path}, {"layout", to_string(r.layout)}, {"applied", applied}});
}

// The end picture takes the start picture's bucket (FramePack-Studio resizes both to the same
// size): another aspect ratio is centre-cropped, and the job says so.
void Job::prepare_end_image() {
  const Frames& e = req_.end_image;
  end_hw3_ = pipeline::prepare_image_for(e, image_hw3_.size(1), image_hw3_.size(0));
  const double start_aspect = double(req_.image.width) / req_.image.height;
  const double end_aspect = double(e.width) / e.height;
  if (std::abs(end_aspect / start_aspect - 1.0) > 0.01) {
    std::ostringstream o;
    o << "the end image (" << e.width << "x" << e.height << ") has another aspect ratio than the "
      << "start image (" << req_.image.width << "x" << req_.image.height << "): it was "
      << "centre-cropped to the start's " << image_hw3_.size(1) << "x" << image_hw3_.size(0);
    emit(EventType::kNotice, "image", {}, {{"message", o.str()}});
  }
  store_->save_end_image(end_hw3_);
}

// The memory governor (memory/governor.h): a budget on the CPU selects the simulated device.
void Job::start_governor() {
  compute_.device = device_;
  compute_.simulated = !on_cuda_ && req_.vram_budget_bytes > 0;
  if (compute_.simulated && !memory::simulated_device::installed())
    simulated_ = std::make_unique<memory::SimulatedDeviceScope>(req_.vram_budget_bytes);
  memory::GovernorOptions options;
  options.device = compute_;
  options.budget = req_.vram_budget_bytes;
  options.limits.preserved_memory = req_.preserved_memory_bytes;
  options.profile_path = memory::default_profile_path(on_cuda_);
  // The host rung of the out-of-memory ladder: what is kept for later jobs goes first (a model
  // this job uses stays: the job holds it).
  options.release_host_memory = [] {
    pipeline::clear_prompt_cache();
    pipeline::warm_registry().clear();
  };
  // FRAMESMITH_MEMORY_PLAN=largest: every phase starts at its largest setting (estimates are
  // still reported); for testing the OOM recovery and for measuring.
  if (const char* plan = std::getenv("FRAMESMITH_MEMORY_PLAN");
      plan != nullptr && std::string(plan) == "largest")
    options.use_plan = false;
  governor_ = std::make_unique<memory::Governor>(
      options, [this](const Event& e) { deliver(e); }, cb_.cancel, t0_);
  // The model set's sizes (every component's header and config): kept with the warm models.
  std::string where;
  for (const ComponentPath& c : models_.found) where += c.path + ";";
  const std::string key = warm_key({where, on_cuda_ ? "cuda" : "cpu"});
  if (warm())
    if (auto kept = pipeline::warm_registry().find<memory::ModelFootprint>("footprint", key)) {
      footprint_ = *kept;
      return;
    }
  footprint_ = memory::read_model_footprint(models_, on_cuda_);
  if (warm())
    pipeline::warm_registry().keep("footprint", key,
                                   std::make_shared<memory::ModelFootprint>(footprint_),
                                   "sizes of " + models_.description, 0, 0);
}

// The start picture cropped to its bucket, and with its size the plan of every phase.
void Job::prepare_image() {
  progress("image");
  if (video_job()) {
    prepare_video();
  } else {
    // The picture is prepared, kept and saved on the host (the device gets it in the encoders).
    const memory::HostScope host;
    image_hw3_ = pipeline::prepare_start_image(req_.image, req_.resolution);
    result_.input_image = hw3_to_frames(image_hw3_);
    store_->save_start_image(image_hw3_);
    if (cb_.on_input_image) cb_.on_input_image(result_.input_image);
    if (req_.end_image.count > 0) prepare_end_image();
  }
  memory::JobShape shape = memory::job_shape_for(footprint_);
  shape.height = image_hw3_.size(0);
  shape.width = image_hw3_.size(1);
  shape.latent_window = req_.latent_window;
  shape.sections = pipeline::total_latent_sections(req_.seconds, req_.latent_window);
  shape.step_cache_tensors = req_.cache == StepCache::kTeaCache   ? 2
                             : req_.cache == StepCache::kMagCache ? 1
                                                                  : 0;
  governor_->plan_job(footprint_, shape);
}

// The clip's frames at the bucket of their size, and the picture the image encoder sees: the
// first of the frames that are encoded (FramePack-Studio's video_encode).
void Job::prepare_video() {
  const memory::HostScope host;
  const Frames& v = req_.input_video;
  const std::int64_t encoded = pipeline::frames_to_encode(v.count);
  if (encoded < 4)
    throw Error("the input video has " + std::to_string(v.count) +
                " frame(s): extending a video needs at least 4");
  auto frame = [&](int i) {
    Frames f;
    f.width = v.width;
    f.height = v.height;
    f.count = 1;
    f.rgb.assign(v.frame(i), v.frame(i) + std::size_t(v.width) * v.height * 3);
    return f;
  };
  image_hw3_ = pipeline::prepare_start_image(frame(int(v.count - encoded)), req_.resolution);
  const std::int64_t w = image_hw3_.size(1), h = image_hw3_.size(0);
  clip_hw3_ = at::empty({v.count, h, w, 3}, at::kByte);
  for (int i = 0; i < v.count; ++i) clip_hw3_[i].copy_(pipeline::prepare_image_for(frame(i), w, h));
  const int source_w = v.width, source_h = v.height, count = v.count;
  req_.input_video = Frames();  // the job's copy of the source frames: the cropped ones stay
  result_.input_image = hw3_to_frames(image_hw3_);
  store_->save_start_image(image_hw3_);
  if (cb_.on_input_image) cb_.on_input_image(result_.input_image);
  std::ostringstream o;
  o << "video extension ("
    << (req_.variant == TransformerVariant::kF1 ? "forward, F1" : "backward, original")
    << "): the clip's " << count << " frames (" << source_w << "x" << source_h << ", "
    << req_.input_video_source.fps << " fps) at " << w << "x" << h << ", its last " << encoded
    << " encoded as the history, " << req_.seconds << " s added";
  emit(EventType::kNotice, "image", {}, {{"message", o.str()}});
}

// The clip's last frames through the VAE (16 at a time, as FramePack-Studio encodes them), each
// batch under the governor's out-of-memory ladder; the clip's tail for the seam.
void Job::encode_video(pipeline::SectionLoopInputs& in) {
  progress("vae encode");
  const std::int64_t frames = clip_hw3_.size(0);
  const std::int64_t encoded = pipeline::frames_to_encode(frames);
  std::vector<at::Tensor> parts;
  for (std::int64_t i = frames - encoded; i < frames; i += 16) {
    check_cancel();
    at::Tensor batch;
    {
      const memory::HostScope host;
      batch = pipeline::vae_pixels(clip_hw3_.narrow(0, i, std::min<std::int64_t>(16, frames - i)));
    }
    parts.push_back(governor_->encode_start_latent(
        [&](at::Device d) {
          if (!d.is_cpu()) return load_vae(vae_path_, vae_dtype_, d);
          return on_cuda_ ? load_vae(vae_path_, at::kFloat, at::kCPU) : vae_;
        },
        batch, footprint_.vae_encoder_bytes + footprint_.vae_decoder_bytes));
  }
  const memory::HostScope host;
  in.video.latents = at::cat(parts, 2);
  in.video.num_cleaned_frames = req_.video_context_frames;
  // Exactly the clip's last frames that the seam blends: the decoded frames of its last s
  // latents, s = a window at most (the loop's choice for a tail this long, so the frames in
  // front go out as they came, not through float and back).
  const std::int64_t s =
      std::min({std::int64_t(req_.latent_window), in.video.latents.size(2), (frames - 1) / 4 + 1});
  clip_tail_ = pipeline::pixel_frames_for_latents(s);
  in.video.clip_pixels = pipeline::vae_pixels(clip_hw3_.narrow(0, frames - clip_tail_, clip_tail_));
  in.video.clip_frames = frames;
}

// The chunk that joins the clip starts at its tail: the clip's earlier frames go in front.
Frames Job::with_clip_prefix(const Frames& from_seam) const {
  const std::int64_t before = clip_hw3_.size(0) - clip_tail_;
  Frames f;
  f.width = from_seam.width;
  f.height = from_seam.height;
  f.count = int(before) + from_seam.count;
  f.rgb.resize(std::size_t(f.count) * f.width * f.height * 3);
  std::memcpy(f.rgb.data(), clip_hw3_.data_ptr(), std::size_t(before) * f.width * f.height * 3);
  std::memcpy(f.rgb.data() + std::size_t(before) * f.width * f.height * 3, from_seam.rgb.data(),
              from_seam.rgb.size());
  return f;
}

// Timed prompts ("[0s: ...] [2s: ...]"): the spans as the loop will use them, and a note that
// says which prompt holds when.
void Job::plan_timed_prompts() {
  const bool backwards = req_.variant != TransformerVariant::kF1;
  schedule_.emplace(
      pipeline::parse_timed_prompt(req_.prompt, req_.seconds, req_.latent_window, backwards),
      req_.blend_sections);
  std::ostringstream o;
  o << "timed prompts: " << schedule_->prompts().size() << " distinct, encoded once each;";
  for (const pipeline::PromptSpan& s : schedule_->spans()) {
    // The original loop's spans are mirrored; say them in video time.
    const double from = backwards ? req_.seconds - s.end_s.value_or(req_.seconds) : s.start_s;
    const double to = backwards ? req_.seconds - s.start_s : s.end_s.value_or(req_.seconds);
    o << " [" << std::max(0.0, from) << "-" << std::min(req_.seconds, to) << " s] \"" << s.prompt
      << "\"";
  }
  if (req_.blend_sections > 0) o << "; blend " << req_.blend_sections;
  emit(EventType::kNotice, "text", {}, {{"message", o.str()}});
}

// The prompts and the picture through their encoders (or what a resumed job or a conditioning
// file already holds), saved to the job folder.
void Job::encode_conditioning() {
  const bool timed = req_.conditioning_file.empty() && pipeline::has_timestamps(req_.prompt);
  if (timed) plan_timed_prompts();
  const std::vector<std::string> texts =
      timed ? schedule_->prompts() : std::vector<std::string>{req_.prompt};
  std::vector<sampling::HunyuanConditioning> encoded;
  const auto take = [&] {
    cond_.positive = encoded.front().positive;
    cond_.negative = encoded.front().negative;
  };
  const bool cached = std::all_of(texts.begin(), texts.end(), [&](const std::string& t) {
    return pipeline::prompts_cached(models_, t, req_.negative_prompt, req_.cfg, device_);
  });
  if (store_->conditioning()) {
    cond_ = *store_->conditioning();  // resumed: encoded before
    encoded.push_back(cond_);
    for (const auto& c : store_->timed_prompts()) encoded.push_back(c);
    if (encoded.size() != texts.size())
      throw Error(store_->dir() + ": the job folder holds " + std::to_string(encoded.size()) +
                  " encoded prompt(s), its timed prompt has " + std::to_string(texts.size()));
  } else if (!req_.conditioning_file.empty()) {
    cond_ = pipeline::load_conditioning(req_.conditioning_file);
    encoded.push_back(cond_);
  } else if (cached) {
    // Encoded earlier in this session: no encoder runs, so there is no text phase to govern;
    // the conditioning is host data.
    const memory::HostScope host;
    pipeline::encode_texts(models_, texts, req_.negative_prompt, req_.cfg, device_, encoded);
    take();
  } else {
    progress("text");
    // Low-VRAM: the LLaMA streamed onto the device per layer, CLIP whole (memory/governor.h).
    governor_->run_text_encoder(
        footprint_.text_encoder_bytes, footprint_.text_encoder_2_bytes,
        [&](at::Device d, const memory::Governor::LlamaPlacement& place_llama) {
          pipeline::TextEncodeHooks hooks;
          hooks.place_llama = place_llama;
          hooks.keep_warm = warm();
          pipeline::encode_texts(models_, texts, req_.negative_prompt, req_.cfg, d, encoded, hooks);
        });
    take();
  }
  if (timed)
    for (const auto& c : encoded) timed_prompts_.push_back(c.positive);
  check_cancel();
  const std::string image_key = warm_key({"image", models_.find(Component::kImageEncoder)->path,
                                          req_.device, this->image_key(image_hw3_)});
  if (!cond_.image_embeddings.defined() && warm()) {
    if (auto kept = pipeline::warm_registry().find<at::Tensor>("image embedding", image_key)) {
      cond_.image_embeddings = *kept;
      reused_.push_back("image embedding");
    }
  }
  if (!cond_.image_embeddings.defined()) {
    progress("image encoder");
    governor_->run_encoder("image", footprint_.image_encoder_bytes, [&](at::Device d) {
      cond_.image_embeddings = pipeline::encode_image(models_, image_hw3_, d);
    });
    if (warm())
      pipeline::warm_registry().keep(
          "image embedding", image_key, std::make_shared<at::Tensor>(cond_.image_embeddings),
          "SigLIP output for the start picture", cond_.image_embeddings.nbytes(), 0, 4);
  }
  check_cancel();
  const memory::HostScope host;
  store_->save_conditioning(cond_);
  if (timed) store_->save_timed_prompts({encoded.begin() + 1, encoded.end()});
  // The transformer sees the prompts' real tokens, not the padding: plan sampling for the
  // longest it will see.
  std::int64_t text_tokens = 0;
  std::vector<const sampling::PromptConditioning*> seen = {&cond_.positive};
  if (req_.cfg != 1.0) seen.push_back(&cond_.negative);
  for (const sampling::PromptConditioning& p : timed_prompts_) seen.push_back(&p);
  for (const sampling::PromptConditioning* p : seen)
    if (p->mask.defined()) text_tokens = std::max(text_tokens, p->mask.sum().item<std::int64_t>());
  governor_->plan_for_prompt(text_tokens);
}

// Loaded on the host: the governor places the transformer's modules (resident or streamed per
// module) from here on, so a model larger than the card never needs to fit whole. With a device
// memory the host keeps the weights memory-mapped in the checkpoint's dtype (bf16 or float8: a
// 13B model is 26 or 13 GB of mapped file, not a 52 GB float32 copy) and each module's device
// copy is converted at placement. The plain CPU converts at load: there every module is
// resident, so converting at use would only add a mapped copy next to the converted one. The VAE
// object stays on the host too; the device gets a copy to encode the start image and the streamed
// decoder's weights to decode.
pipeline::SectionLoopInputs Job::load_models() {
  progress("loading");
  pipeline::SectionLoopInputs in;
  {
    // Host copies of the weights (the device gets its own copies from the governor); the plain
    // CPU job (no device memory) computes on them directly.
    const bool mapped = compute_.has_device_memory();
    std::optional<memory::HostScope> host;
    if (mapped) host.emplace();
    load_transformer_warm(mapped);
    load_vae_warm();
    if (!video_job()) in.start_image = pipeline::vae_pixels(image_hw3_);
  }
  governor_->attach_transformer(*transformer_);
  in.conditioning = cond_;
  in.start_latent = store_->start_latent();  // undefined unless resumed: the loop encodes it
  in.end_latent = store_->end_latent();
  if (schedule_) {
    in.section_conditioning = [this](int section, std::int64_t generated) {
      sampling::HunyuanConditioning c = cond_;
      c.positive =
          pipeline::blended_prompt(timed_prompts_, schedule_->for_section(section, generated));
      return c;
    };
  }
  in.resume_sections = store_->resumed_sections();
  return in;
}

// The transformer as loaded for this folder, dtype, conversion and LoRAs: from the warm registry
// when an earlier job loaded the same, else loaded (and kept, for a warm job). Between jobs it
// is host-side only: the governor's residency put every module back when the job ended.
void Job::load_transformer_warm(bool mapped) {
  const std::string& path = models_.find(Component::kTransformer)->path;
  // A warm model takes this job's LoRAs and strengths (added at each placement on a device,
  // the touched weights converted again on the plain CPU): they are not part of the key.
  const std::string key =
      warm_key({path, dtype_name(transformer_dtype_), mapped ? "at use" : "at load", req_.device});
  if (warm()) transformer_ = pipeline::warm_registry().find<PackedTransformer>("transformer", key);
  if (transformer_) {
    transformer_->set_lora_patch(lora_patch_);
    reused_.push_back(lora_patch_ ? "transformer (with this job's LoRAs)" : "transformer");
    return;
  }
  if (!transformer_store_)
    transformer_store_ = std::make_shared<const io::TensorStore>(io::TensorStore::open(path));
  TransformerLoras loras;
  loras.patch = lora_patch_;
  transformer_ = load_transformer(path, transformer_dtype_, mapped ? at::Device(at::kCPU) : device_,
                                  mapped ? Conversion::kAtUse : Conversion::kAtLoad, loras,
                                  transformer_store_);
  if (!warm()) return;
  std::int64_t host = 0, in_file = 0;
  for (int i = 0; i < transformer_->num_modules(); ++i)
    for (const auto& [name, t] : transformer_->module_tensors(i))
      (transformer_store_->maps(*t) ? in_file : host) += t->nbytes();
  pipeline::warm_registry().keep("transformer", key, transformer_,
                                 path + " (" + dtype_name(transformer_dtype_) + ")", host, in_file);
}

// The VAE with one mapping of its file for the model and the streamed decoder.
void Job::load_vae_warm() {
  struct KeptVae {
    std::shared_ptr<Vae> vae;
    std::shared_ptr<const io::TensorStore> store;
  };
  const std::string key = warm_key({vae_path_, dtype_name(vae_dtype_)});
  std::shared_ptr<KeptVae> kept;
  if (warm()) kept = pipeline::warm_registry().find<KeptVae>("vae", key);
  if (kept) {
    reused_.push_back("VAE");
  } else {
    kept = std::make_shared<KeptVae>();
    kept->store = std::make_shared<const io::TensorStore>(io::TensorStore::open(vae_path_));
    kept->vae = load_vae(vae_path_, vae_dtype_, at::kCPU, kept->store);
    if (warm())
      pipeline::warm_registry().keep("vae", key, kept,
                                     vae_path_ + " (" + dtype_name(vae_dtype_) + ")",
                                     pipeline::converted_bytes(*kept->store, vae_dtype_),
                                     std::int64_t(kept->store->total_bytes()));
  }
  vae_ = kept->vae;
  governor_->attach_decoder(std::make_shared<memory::StreamedVaeDecoder>(
      vae_->config(), Weights(kept->store, vae_dtype_, at::kCPU)));
}

// A picture's latent depends on the VAE, its dtype, the device and the picture's bytes only.
at::Tensor Job::encode_latent_warm(const at::Tensor& hw3, const std::string& what,
                                   const std::function<at::Tensor()>& encode) {
  const std::string key =
      warm_key({vae_path_, dtype_name(vae_dtype_), req_.device, image_key(hw3)});
  if (warm())
    if (auto kept = pipeline::warm_registry().find<at::Tensor>("latent", key)) {
      reused_.push_back(what);
      return *kept;
    }
  at::Tensor latent = encode();
  if (warm()) {
    const memory::HostScope host;
    auto copy = std::make_shared<at::Tensor>(latent.to(at::kCPU).clone());
    pipeline::warm_registry().keep("latent", key, copy, what + " of " + vae_path_, copy->nbytes(),
                                   0, 4);
  }
  return latent;
}

void Job::encode_start_latent(pipeline::SectionLoopInputs& in) {
  if (video_job()) return encode_video(in);
  const auto encode = [&](const at::Tensor& image) {
    progress("vae encode");
    return governor_->encode_start_latent(
        [&](at::Device d) {
          if (!d.is_cpu()) return load_vae(vae_path_, vae_dtype_, d);
          return on_cuda_ ? load_vae(vae_path_, at::kFloat, at::kCPU) : vae_;  // CPU: float32
        },
        image, footprint_.vae_encoder_bytes + footprint_.vae_decoder_bytes);
  };
  if (!in.start_latent.defined())
    in.start_latent =
        encode_latent_warm(image_hw3_, "start latent", [&] { return encode(in.start_image); });
  // The end image is encoded like the start image, saved, and taken back on resume.
  if (end_hw3_.defined() && !in.end_latent.defined()) {
    in.end_latent = encode_latent_warm(end_hw3_, "end latent",
                                       [&] { return encode(pipeline::vae_pixels(end_hw3_)); });
    store_->save_end_latent(in.end_latent);
  }
}

pipeline::SectionLoopParams Job::loop_params() const {
  pipeline::SectionLoopParams params;
  params.variant = req_.variant == TransformerVariant::kF1 ? pipeline::LoopVariant::kF1
                                                           : pipeline::LoopVariant::kOriginal;
  params.total_seconds = req_.seconds;
  params.latent_window_size = req_.latent_window;
  params.steps = req_.steps;
  params.gs = req_.distilled_cfg;
  params.cfg = req_.cfg;
  params.rs = req_.cfg_rescale;
  params.seed = req_.seed;
  if (req_.shift > 0) params.shift = req_.shift;
  params.use_teacache = req_.cache == StepCache::kTeaCache;
  params.teacache_threshold = req_.teacache_threshold;
  params.use_magcache = req_.cache == StepCache::kMagCache;
  params.end_frame_strength = req_.end_frame_strength;
  params.magcache = {req_.magcache_threshold, req_.magcache_max_skips, req_.magcache_retention};
  params.sample_dtype = transformer_dtype_;
  params.transformer_device = device_;
  return params;
}

// Progress and previews per step; each section saved as soon as it is sampled, then decoded
// (under the governor) and handed out.
pipeline::SectionLoopCallbacks Job::loop_callbacks(int sections) {
  pipeline::SectionLoopCallbacks lcb;
  lcb.cancel = cb_.cancel;
  lcb.on_start_latent = [this](const at::Tensor& start) { store_->save_start_latent(start); };
  lcb.on_step = [this](const pipeline::StepProgress& p, const at::Tensor& preview) {
    progress("sampling", p.section + 1, p.num_sections, p.step + 1, p.num_steps);
    if (cb_.on_preview && preview.defined()) {
      Progress pr{"sampling", p.section + 1, p.num_sections, p.step + 1, p.num_steps, elapsed()};
      cb_.on_preview(hw3_to_frames(preview), pr);
    }
  };
  // The latents are on disk before the decode: a decode that fails (out of memory at the
  // smallest rung, a kill) loses no sampling, and the next section never starts before its
  // predecessor is saved.
  lcb.on_sampled = [this, sections](int section, const at::Tensor& new_latents) {
    // Non-finite latents would decode to a black or garbage video and poison every later
    // section's context: stop here, naming the section, with the earlier sections kept.
    if (!at::isfinite(new_latents).all().item<bool>())
      throw Error("section " + std::to_string(section + 1) + " of " + std::to_string(sections) +
                  ": the sampled latents hold NaN or infinite values (a damaged model, or an "
                  "unstable setting such as a very high CFG); nothing of this section was kept");
    latents_path_ = store_->save_section(section, sections, new_latents);
  };
  lcb.on_section = [this, sections](const pipeline::SectionOutput& out) {
    frames_so_far_ += out.final_pixels.size(2) + out.tail_pixels.size(2) - tail_frames_;
    tail_frames_ = out.tail_pixels.size(2);
    if (!out.resumed) section_done(out, sections, latents_path_, store_->latent_frames());
    deliver_chunk(out, sections);
  };
  lcb.wrap_model = governor_->model_wrapper();
  lcb.decode = [this](const at::Tensor& latents) {
    return governor_->decode(latents, vae_->config().scaling_factor);
  };
  return lcb;
}

GenerationResult Job::run() {
  open_job();
  start_governor();
  read_loras();
  check_cancel();
  prepare_image();
  encode_conditioning();
  pipeline::SectionLoopInputs in = load_models();
  encode_start_latent(in);
  if (!reused_.empty()) {
    std::string list;
    for (const std::string& r : reused_) list += (list.empty() ? "" : ", ") + r;
    emit(EventType::kNotice, "loading", {},
         {{"message", "kept warm from an earlier job: " + list}});
  }
  result_.sections_resumed = in.resume_sections.count;
  result_.sections_done = result_.sections_resumed;
  const pipeline::SectionLoopParams params = loop_params();
  const int sections = pipeline::section_count(params);
  result_.sections_total = sections;
  const pipeline::SectionLoopResult r =
      pipeline::run_section_loop(*transformer_, *vae_, in, params, loop_callbacks(sections));
  governor_->finish();  // nothing of the job stays on the device
  result_.sections_done = r.num_sections;
  result_.status = StatusCode::kOk;
  const memory::HostScope host;  // the frames handed back
  result_.video = assembled_video();
  emit(EventType::kFinished, "done", {{"frames", double(r.total_frames)}, {"seconds", elapsed()}});
  return result_;
}

void Job::section_done(const pipeline::SectionOutput& out, int sections,
                       const std::string& latents_path, std::int64_t latent_frames) {
  SectionSaved saved;
  saved.section = out.section + 1;
  saved.sections = sections;
  saved.latents_path = latents_path;
  saved.latent_frames = latent_frames;
  result_.sections_done = out.section + 1;
  std::map<std::string, double> numbers = {{"section", out.section + 1},
                                           {"sections", sections},
                                           {"latent_frames", double(out.new_latents.size(2))},
                                           {"total_latent_frames", double(saved.latent_frames)},
                                           {"frames", double(frames_so_far_)}};
  // What the step cache saved in this section (a resumed section was not sampled again): in
  // transformer calls, one per step, two with real CFG (the negative prompt's too).
  if (!out.resumed) {
    numbers["calls_computed"] = transformer_->computed_calls();
    numbers["calls_reused"] = transformer_->reused_calls();
  }
  emit(EventType::kSectionDone, "section " + std::to_string(out.section + 1), numbers,
       {{"latents", saved.latents_path}, {"cache", to_string(req_.cache)}});
  if (cb_.on_section_saved) cb_.on_section_saved(saved);
}

// The chunk goes to the client, or, without one, into the whole video the result returns.
void Job::deliver_chunk(const pipeline::SectionOutput& out, int sections) {
  if (!out.resumed)
    emit(EventType::kChunkDecoded, "decode section " + std::to_string(out.section + 1),
         {{"frames", double(frames_so_far_)}});
  const bool seam = video_job() && !seam_done_ && out.final_pixels.size(2) > 0 &&
                    out.first_final_frame == clip_hw3_.size(0) - clip_tail_;
  if (seam) seam_done_ = true;
  if (!cb_.on_chunk) {
    assembler_.add(out);
    return;
  }
  VideoChunk chunk;
  chunk.section = out.section + 1;
  chunk.sections = sections;
  chunk.resumed = out.resumed;
  chunk.final_frames = to_frames(out.final_pixels);
  chunk.first_final_frame = out.first_final_frame;
  if (seam) {
    chunk.final_frames = with_clip_prefix(chunk.final_frames);
    chunk.first_final_frame = 0;
  }
  chunk.tail = to_frames(out.tail_pixels);
  chunk.first_tail_frame = out.first_tail_frame;
  chunk.total_frames = out.total_frames;
  cb_.on_chunk(chunk);
}

}  // namespace

GenerationResult generate(const GenerationRequest& request, const GenerationCallbacks& callbacks) {
  Job job(request, callbacks);
  auto fail = [&](StatusCode code, const std::string& message) {
    GenerationResult failed = job.partial();
    failed.status = code;
    failed.message = message;
    job.emit(EventType::kError, "error", {}, {{"message", message}, {"status", to_string(code)}});
    return failed;
  };
  try {
    return job.run();
  } catch (const Cancelled&) {
    return fail(StatusCode::kCancelled, "stopped by the user");
  } catch (const memory::OutOfMemory& e) {
    return fail(StatusCode::kOutOfMemory, e.what());
  } catch (const Error& e) {
    return fail(StatusCode::kBadInput, e.what());
  } catch (const std::exception& e) {
    std::string msg;
    if (memory::is_out_of_memory(e, &msg))
      return fail(StatusCode::kOutOfMemory, "out of memory: " + msg);
    return fail(StatusCode::kFailed, e.what());
  }
}

}  // namespace framesmith

namespace framesmith {

std::vector<WarmModel> warm_models() {
  return pipeline::warm_registry().list();
}

void unload_warm_models() {
  pipeline::warm_registry().clear();
  pipeline::clear_prompt_cache();
}

void set_warm_models_budget(std::int64_t host_bytes) {
  pipeline::warm_registry().set_budget(host_bytes);
}

}  // namespace framesmith
