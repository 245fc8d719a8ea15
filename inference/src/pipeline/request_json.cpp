#include "framesmith/request_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "framesmith/lora_files.h"
#include "framesmith/utf8.h"
#include "pipeline/timed_prompts.h"

namespace framesmith {

namespace {

constexpr int kJobFormat = 3;

// object[key] into `field` when present and not null; Error naming prefix + key when its type
// is wrong.
template <typename T>
void read_field(const nlohmann::json& object, const char* key, const char* prefix, T& field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return;
  try {
    field = it->get<T>();
  } catch (const std::exception&) {
    throw Error(std::string("job parameter \"") + prefix + key + "\" has the wrong type");
  }
}

}  // namespace

const char* to_string(StepCache c) {
  switch (c) {
    case StepCache::kNone:
      return "none";
    case StepCache::kTeaCache:
      return "teacache";
    case StepCache::kMagCache:
      return "magcache";
  }
  return "none";
}

StepCache parse_step_cache(const std::string& text) {
  for (StepCache c : {StepCache::kNone, StepCache::kTeaCache, StepCache::kMagCache})
    if (text == to_string(c)) return c;
  throw Error("the cache must be none, teacache or magcache, not \"" + escape_invalid_utf8(text) +
              "\"");
}

std::string request_to_json(const GenerationRequest& r) {
  nlohmann::ordered_json j;
  // The job file's format: 1 had no field (before the cache choice, LoRAs, end frame and timed
  // prompts), 2 adds them, 3 the input video of a video extension. Older files load; newer ones
  // are refused, not half-read.
  j["job_format"] = kJobFormat;
  j["framesmith_version"] = engine_version();
  j["model"] = r.model_dir;
  j["variant"] = r.variant == TransformerVariant::kF1 ? "f1" : "original";
  j["prompt"] = r.prompt;
  j["negative_prompt"] = r.negative_prompt;
  if (!r.conditioning_file.empty()) j["conditioning"] = r.conditioning_file;
  j["seconds"] = r.seconds;
  j["seed"] = r.seed;
  j["steps"] = r.steps;
  j["gs"] = r.distilled_cfg;
  j["cfg"] = r.cfg;
  j["rs"] = r.cfg_rescale;
  j["window"] = r.latent_window;
  j["resolution"] = r.resolution;
  j["teacache"] = r.cache == StepCache::kTeaCache;  // what files before the cache choice read
  j["cache"] = to_string(r.cache);
  j["teacache_threshold"] = r.teacache_threshold;
  j["magcache"] = {{"threshold", r.magcache_threshold},
                   {"max_skips", r.magcache_max_skips},
                   {"retention", r.magcache_retention}};
  j["shift"] = r.shift;
  // The end image itself is kept in the job folder (end_image.safetensors), as the start image.
  j["end_frame"] = r.end_image.count > 0;
  j["end_frame_strength"] = r.end_frame_strength;
  j["blend_sections"] = r.blend_sections;
  // The clip itself stays where it is (its path); a video job is run again from it.
  if (!r.input_video_source.path.empty() || r.input_video.count > 0)
    j["input_video"] = {
        {"path", r.input_video_source.path},
        {"fps", r.input_video_source.fps},
        {"frames", r.input_video.count > 0 ? r.input_video.count : r.input_video_source.frames},
        {"width", r.input_video.count > 0 ? r.input_video.width : r.input_video_source.width},
        {"height", r.input_video.count > 0 ? r.input_video.height : r.input_video_source.height},
        {"context_frames", r.video_context_frames}};
  j["loras"] = nlohmann::json::array();
  for (const LoraSpec& l : r.loras)
    j["loras"].push_back({{"file", l.path}, {"strength", l.strength}});
  j["device"] = r.device;
  j["vram_budget"] = r.vram_budget_bytes;
  j["preserve"] = r.preserved_memory_bytes;
  return j.dump(2);
}

void request_from_json(const std::string& text, GenerationRequest& r) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(std::string("job parameters are not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw Error("job parameters must be a JSON object");
  if (auto it = j.find("job_format"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int>() < 1)
      throw Error("job parameter \"job_format\" must be a whole number from 1");
    if (it->get<int>() > kJobFormat)
      throw Error("this job file has format " + std::to_string(it->get<int>()) +
                  ", newer than this Framesmith reads (" + std::to_string(kJobFormat) +
                  "): update Framesmith to run it");
  }
  auto get = [&](const char* key, auto& field) { read_field(j, key, "", field); };
  get("model", r.model_dir);
  std::string variant = r.variant == TransformerVariant::kF1 ? "f1" : "original";
  get("variant", variant);
  if (variant != "f1" && variant != "original")
    throw Error("job parameter \"variant\" must be \"original\" or \"f1\", not \"" + variant +
                "\"");
  r.variant = variant == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  get("prompt", r.prompt);
  get("negative_prompt", r.negative_prompt);
  get("conditioning", r.conditioning_file);
  get("seconds", r.seconds);
  // The seed exactly as a 64-bit unsigned integer: nlohmann would turn -1 into 2^64 - 1 and 1.5
  // into 1 without a word.
  if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<std::int64_t>() >= 0))
      throw Error("job parameter \"seed\" must be a whole number from 0 to 2^64 - 1, not " +
                  it->dump());
    r.seed = it->get<std::uint64_t>();
  }
  get("steps", r.steps);
  get("gs", r.distilled_cfg);
  get("cfg", r.cfg);
  get("rs", r.cfg_rescale);
  get("window", r.latent_window);
  get("resolution", r.resolution);
  // "teacache": true / false in files from before the cache choice; "cache" names it since.
  bool teacache = r.cache == StepCache::kTeaCache;
  get("teacache", teacache);
  if (j.contains("teacache")) r.cache = teacache ? StepCache::kTeaCache : StepCache::kNone;
  if (auto it = j.find("cache"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw Error("job parameter \"cache\" must be a string");
    try {
      r.cache = parse_step_cache(it->get<std::string>());
    } catch (const Error& e) {
      throw Error(std::string("job parameter \"cache\": ") + e.what());
    }
  }
  get("teacache_threshold", r.teacache_threshold);
  if (auto it = j.find("magcache"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw Error("job parameter \"magcache\" must be an object");
    read_field(*it, "threshold", "magcache.", r.magcache_threshold);
    read_field(*it, "max_skips", "magcache.", r.magcache_max_skips);
    read_field(*it, "retention", "magcache.", r.magcache_retention);
  }
  get("shift", r.shift);
  get("end_frame_strength", r.end_frame_strength);
  get("blend_sections", r.blend_sections);
  if (auto it = j.find("input_video"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      throw Error("job parameter \"input_video\" must be {\"path\": ..., \"fps\": ...}");
    read_field(*it, "path", "input_video.", r.input_video_source.path);
    read_field(*it, "fps", "input_video.", r.input_video_source.fps);
    read_field(*it, "frames", "input_video.", r.input_video_source.frames);
    read_field(*it, "width", "input_video.", r.input_video_source.width);
    read_field(*it, "height", "input_video.", r.input_video_source.height);
    read_field(*it, "context_frames", "input_video.", r.video_context_frames);
  }
  if (auto it = j.find("loras"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw Error("job parameter \"loras\" must be a list");
    r.loras.clear();
    for (const nlohmann::json& l : *it) {
      if (!l.is_object() || !l.contains("file"))
        throw Error(
            "job parameter \"loras\": each entry must be {\"file\": ..., \"strength\": ...}");
      LoraSpec spec;
      read_field(l, "file", "loras.", spec.path);
      read_field(l, "strength", "loras.", spec.strength);
      r.loras.push_back(spec);
    }
  }
  get("device", r.device);
  get("vram_budget", r.vram_budget_bytes);
  get("preserve", r.preserved_memory_bytes);
  validate_request(r);
}

void validate_request(const GenerationRequest& r) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error(what);
  };
  need(r.seconds > 0 && r.seconds <= 120,
       "seconds must be in (0, 120], not " + std::to_string(r.seconds));
  need(r.steps >= 1 && r.steps <= 100, "steps must be 1..100, not " + std::to_string(r.steps));
  need(r.distilled_cfg >= 1 && r.distilled_cfg <= 32,
       "distilled CFG (gs) must be 1..32, not " + std::to_string(r.distilled_cfg));
  need(r.cfg >= 1 && r.cfg <= 32, "CFG must be 1..32, not " + std::to_string(r.cfg));
  need(r.cfg_rescale >= 0 && r.cfg_rescale <= 1,
       "CFG rescale must be 0..1, not " + std::to_string(r.cfg_rescale));
  need(r.latent_window >= 1 && r.latent_window <= 33,
       "latent window must be 1..33, not " + std::to_string(r.latent_window));
  need(r.resolution >= 64 && r.resolution <= 1024 && r.resolution % 16 == 0,
       "resolution must be a multiple of 16 in 64..1024, not " + std::to_string(r.resolution));
  need(r.shift >= 0 && r.shift <= 20, "shift must be 0 (automatic) .. 20");
  need(r.teacache_threshold > 0 && r.teacache_threshold <= 10,
       "TeaCache threshold must be in (0, 10], not " + std::to_string(r.teacache_threshold));
  need(r.magcache_threshold > 0 && r.magcache_threshold <= 10,
       "MagCache threshold must be in (0, 10], not " + std::to_string(r.magcache_threshold));
  need(r.magcache_max_skips >= 0 && r.magcache_max_skips <= 100,
       "MagCache max skips must be 0..100, not " + std::to_string(r.magcache_max_skips));
  need(r.magcache_retention >= 0 && r.magcache_retention <= 1,
       "MagCache retention must be 0..1, not " + std::to_string(r.magcache_retention));
  for (const LoraSpec& l : r.loras) {
    need(!l.path.empty(), "a LoRA entry names no file");
    need(invalid_utf8_offset(l.path) == std::string::npos, "a LoRA path is not valid UTF-8");
    need(std::isfinite(l.strength) && std::abs(l.strength) <= kMaxLoraStrength,
         "LoRA strength must be between -10 and 10, not " + std::to_string(l.strength) + " (" +
             escape_invalid_utf8(l.path) + ")");
  }
  need(
      std::isfinite(r.end_frame_strength) && r.end_frame_strength >= 0 && r.end_frame_strength <= 1,
      "end-frame strength must be 0..1, not " + std::to_string(r.end_frame_strength));
  need(r.end_image.count == 0 || r.variant == TransformerVariant::kOriginal,
       "an end image needs the original model: F1 generates forwards from the start image and "
       "has no end to hold (use --variant original)");
  const bool video = r.input_video.count > 0 || !r.input_video_source.path.empty();
  need(!video || r.end_image.count == 0,
       "a video extension takes no end image: the clip's own frames are its start");
  need(r.video_context_frames >= 1 && r.video_context_frames <= 10,
       "video context frames must be 1..10, not " + std::to_string(r.video_context_frames));
  need(std::isfinite(r.input_video_source.fps) && r.input_video_source.fps > 0 &&
           r.input_video_source.fps <= 240,
       "the input video's frame rate must be in (0, 240], not " +
           std::to_string(r.input_video_source.fps));
  need(r.blend_sections >= 0 && r.blend_sections <= 100,
       "blend sections must be 0..100, not " + std::to_string(r.blend_sections));
  if (r.conditioning_file.empty())
    for (const std::string& problem : pipeline::timed_prompt_problems(r.prompt, r.seconds))
      need(false, "timed prompt: " + problem);
  need(r.vram_budget_bytes >= 0, "VRAM budget must not be negative");
  need(r.preserved_memory_bytes >= 0, "preserved memory must not be negative");
  need(r.device == "cpu" || r.device.rfind("cuda", 0) == 0,
       "device must be cpu, cuda or cuda:N, not \"" + escape_invalid_utf8(r.device) + "\"");
  // Texts are kept in job.json and the video's metadata, which are UTF-8 JSON: a malformed byte is
  // refused here, with where it is, rather than failing deep inside a serialiser or being
  // silently replaced (which would change the prompt, and so the video, on resume).
  const std::pair<const char*, const std::string*> texts[] = {
      {"the prompt", &r.prompt},           {"the negative prompt", &r.negative_prompt},
      {"the model path", &r.model_dir},    {"the conditioning path", &r.conditioning_file},
      {"the job folder path", &r.job_dir}, {"the input video path", &r.input_video_source.path},
  };
  for (const auto& [what, text] : texts) {
    const std::size_t at = invalid_utf8_offset(*text);
    need(at == std::string::npos,
         std::string(what) + " is not valid UTF-8 (byte " + std::to_string(at) + ": \"" +
             escape_invalid_utf8(*text) + "\"); write it in UTF-8" +
             (std::string(what).find("path") != std::string::npos ? " (rename the file or folder)"
                                                                  : ""));
  }
}

}  // namespace framesmith
