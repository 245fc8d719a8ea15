#include "pipeline/job_store.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "framesmith/job_folder.h"
#include "framesmith/request_json.h"
#include "io/safetensors.h"
#include "pipeline/conditioning.h"
#include "pipeline/section_schedule.h"
#include "pipeline/timed_prompts.h"

namespace framesmith {
namespace {

namespace fs = std::filesystem;

constexpr const char* kParamsFile = "job.json";
constexpr const char* kStartImageFile = "start_image.safetensors";
constexpr const char* kConditioningFile = "conditioning.safetensors";
constexpr const char* kStartLatentFile = "start_latent.safetensors";
constexpr const char* kEndImageFile = "end_image.safetensors";
constexpr const char* kEndLatentFile = "end_latent.safetensors";
// Timed prompts 1, 2, ... (prompt 0 is conditioning.safetensors): conditioning_prompt1.safetensors
constexpr const char* kTimedPromptPrefix = "conditioning_prompt";

std::string timed_prompt_file(std::size_t i) {
  return std::string(kTimedPromptPrefix) + std::to_string(i) + ".safetensors";
}
constexpr const char* kSectionPrefix = "section_";
constexpr const char* kSafetensors = ".safetensors";

std::string section_file(int section) {
  char name[48];
  std::snprintf(name, sizeof name, "%s%04d%s", kSectionPrefix, section, kSafetensors);
  return name;
}

bool is_section_file(const std::string& name) {
  const std::string pre = kSectionPrefix, suf = kSafetensors;
  if (name.size() <= pre.size() + suf.size() || name.rfind(pre, 0) != 0 ||
      name.compare(name.size() - suf.size(), suf.size(), suf) != 0)
    return false;
  for (std::size_t i = pre.size(); i < name.size() - suf.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read (" + std::strerror(errno) + ")");
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Temporary file + rename, like io::save_safetensors: a crash or a full disk leaves either the
// old file or the new one, never half of one.
void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    out << text;
    out.flush();
    if (!out) {
      const int e = errno;
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (" + std::strerror(e) + "; disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename into place (" + std::strerror(e) + ")");
  }
}

void make_folder(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error(dir + ": cannot create the job folder (" +
                (ec ? ec.message() : std::string("a file has that name")) + ")");
}

// An earlier job's engine files: a fresh job must not be resumed from them. Videos and anything
// else a front end put there stay.
void remove_engine_files(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    const std::string base = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0
                                 ? name.substr(0, name.size() - 4)
                                 : name;
    if (base == kParamsFile || base == kStartImageFile || base == kConditioningFile ||
        base == kStartLatentFile || base == kEndImageFile || base == kEndLatentFile ||
        base.rfind(kTimedPromptPrefix, 0) == 0 || is_section_file(base)) {
      std::error_code rm;
      fs::remove(entry.path(), rm);
      if (rm)
        throw Error(entry.path().string() + ": cannot remove an earlier job's file (" +
                    rm.message() + ")");
    }
  }
  if (ec) throw Error(dir + ": cannot list the job folder (" + ec.message() + ")");
}

at::Tensor read_tensor(const std::string& path, const char* name) {
  auto f = io::SafeTensorsFile::open(path);
  if (!f->has(name)) throw Error(path + ": no tensor \"" + name + "\" in this job file");
  return f->tensor(name).clone();
}

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// A section file, or null when a kill or a full disk cut it short (or it is anything else but a
// whole safetensors file with "latents"): such a file does not count as saved.
std::shared_ptr<io::SafeTensorsFile> open_section(const std::string& path) {
  if (!exists(path)) return nullptr;
  try {
    auto f = io::SafeTensorsFile::open(path);
    return f->has("latents") ? f : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool section_usable(const std::string& path) {
  return open_section(path) != nullptr;
}

// Temporary files of writers that died (atomic writes go to NAME.tmp, videos to NAME.partial):
// only called with the folder locked, so no live writer owns them.
void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto ends_with = [&](const std::string& suffix) {
      return name.size() > suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".tmp") || ends_with(".partial")) {
      std::error_code rm;
      fs::remove(entry.path(), rm);
    }
  }
}

// The parameters a section's latents depend on (not where or on what it ran), as compact JSON:
// stored with each section, so that a resume whose job.json was edited in between is caught.
std::string result_params(const GenerationRequest& r) {
  nlohmann::json all = nlohmann::json::parse(request_to_json(r));
  nlohmann::ordered_json j;
  for (const char* key :
       {"variant", "prompt", "negative_prompt", "conditioning", "seconds", "seed", "steps", "gs",
        "cfg", "rs", "window", "resolution", "teacache", "shift"}) {
    if (all.contains(key)) j[key] = all[key];
  }
  // The cache's settings, only where they are not what sections saved before the cache choice
  // (TeaCache at its fixed threshold, or none): those job folders still resume.
  if (r.cache == StepCache::kMagCache) {
    j["cache"] = all["cache"];
    j["magcache"] = all["magcache"];
  } else if (r.cache == StepCache::kTeaCache &&
             r.teacache_threshold != GenerationRequest{}.teacache_threshold) {
    j["teacache_threshold"] = all["teacache_threshold"];
  }
  // An end frame changes every section; job folders from before it saved none.
  if (r.end_image.count > 0) {
    j["end_frame"] = true;
    j["end_frame_strength"] = all["end_frame_strength"];
  }
  // Blending matters only to timed prompts; job folders from before them saved none.
  if (pipeline::has_timestamps(r.prompt)) j["blend_sections"] = all["blend_sections"];
  // LoRAs change every section; none is what job folders from before them saved.
  if (!r.loras.empty()) j["loras"] = all["loras"];
  return j.dump();
}

// "steps 2 -> 3, seed 1 -> 2": what differs between two result_params texts.
std::string params_difference(const std::string& saved, const std::string& now) {
  const nlohmann::json a = nlohmann::json::parse(saved, nullptr, false);
  const nlohmann::json b = nlohmann::json::parse(now, nullptr, false);
  if (!a.is_object() || !b.is_object()) return "unreadable parameters";
  std::string out;
  for (const auto& [key, value] : b.items()) {
    const auto it = a.find(key);
    const std::string was = it == a.end() ? "(none)" : it->dump();
    if (was == value.dump()) continue;
    if (!out.empty()) out += ", ";
    out += key + " " + was + " -> " + value.dump();
  }
  return out;
}

// The parameters a saved section file was made with ("" for files of older versions).
std::string saved_params(const io::SafeTensorsFile& section) {
  const auto& meta = section.header().metadata;
  const auto it = meta.find("params");
  return it == meta.end() ? std::string() : it->second;
}

// job.json as a request; `end_frame`, when given, says whether the job has an end frame (its
// picture is kept beside the start image, not in the JSON).
GenerationRequest read_params(const std::string& dir, bool* end_frame = nullptr) {
  const std::string p = job_params_path(dir);
  if (!exists(p)) throw Error(dir + ": no job here (" + kParamsFile + " is missing)");
  GenerationRequest r;
  const std::string text = read_text(p);
  try {
    request_from_json(text, r);
  } catch (const Error& e) {
    throw Error(p + ": " + e.what());
  }
  if (end_frame) *end_frame = nlohmann::json::parse(text, nullptr, false).value("end_frame", false);
  return r;
}

}  // namespace

std::string job_params_path(const std::string& dir) {
  return dir + "/" + kParamsFile;
}

std::string job_section_path(const std::string& dir, int section) {
  return dir + "/" + section_file(section);
}

JobFolderInfo inspect_job_folder(const std::string& dir) {
  JobFolderInfo info;
  if (!exists(job_params_path(dir))) return info;
  const GenerationRequest r = read_params(dir);
  info.has_job = true;
  info.sections_total = pipeline::total_latent_sections(r.seconds, r.latent_window);
  while (info.sections_done < info.sections_total &&
         section_usable(job_section_path(dir, info.sections_done)))
    ++info.sections_done;
  for (int s = info.sections_done; s < info.sections_total; ++s)
    if (exists(job_section_path(dir, s)) && !section_usable(job_section_path(dir, s)))
      info.damaged_sections.push_back(job_section_path(dir, s));
  return info;
}

namespace {

// A saved picture (start or end image) as Frames.
Frames read_job_image(const std::string& dir, const char* file, const char* what) {
  const std::string image_path = dir + "/" + file;
  if (!exists(image_path))
    throw Error(dir + ": the job stopped before its " + what + " was saved (" + file +
                " is missing); start it again");
  const at::Tensor img = read_tensor(image_path, "image");
  if (img.dim() != 3 || img.size(2) != 3 || img.scalar_type() != at::kByte)
    throw Error(image_path + ": \"image\" must be uint8 (H, W, 3)");
  const at::Tensor c = img.contiguous();
  Frames f;
  f.count = 1;
  f.height = static_cast<int>(c.size(0));
  f.width = static_cast<int>(c.size(1));
  f.rgb.assign(c.data_ptr<std::uint8_t>(), c.data_ptr<std::uint8_t>() + c.numel());
  return f;
}

}  // namespace

GenerationRequest load_job_request(const std::string& dir) {
  bool end_frame = false;
  GenerationRequest r = read_params(dir, &end_frame);
  r.image = read_job_image(dir, kStartImageFile, "start image");
  if (end_frame) r.end_image = read_job_image(dir, kEndImageFile, "end image");
  r.job_dir = dir;
  r.resume = true;
  return r;
}

namespace pipeline {

GenerationRequest resumed_request(const GenerationRequest& caller) {
  GenerationRequest r = load_job_request(caller.job_dir);
  if (!caller.model_dir.empty()) r.model_dir = caller.model_dir;
  r.device = caller.device;
  r.vram_budget_bytes = caller.vram_budget_bytes;
  r.preserved_memory_bytes = caller.preserved_memory_bytes;
  // A video job's clip is not copied into the folder: the caller reads it again from the saved
  // path. The same frames give the same latents, so the resumed video is the one it would have
  // been.
  if (!r.input_video_source.path.empty()) {
    const Frames& v = caller.input_video;
    if (v.count == 0)
      throw Error(caller.job_dir + ": the job extends the video " + r.input_video_source.path +
                  ": resuming it needs that video's frames again (framesmith-cli and the studio "
                  "read them; framesmith-engine has no video decoder)");
    if (v.count != r.input_video_source.frames || v.width != r.input_video_source.width ||
        v.height != r.input_video_source.height)
      throw Error(r.input_video_source.path + " is not the video this job extends (it has " +
                  std::to_string(v.count) + " frames at " + std::to_string(v.width) + "x" +
                  std::to_string(v.height) + ", the job's had " +
                  std::to_string(r.input_video_source.frames) + " at " +
                  std::to_string(r.input_video_source.width) + "x" +
                  std::to_string(r.input_video_source.height) + "): put it back, or start again");
    r.input_video = v;
  }
  return r;
}

JobStore::JobStore(const GenerationRequest& request)
    : dir_(request.job_dir), params_(result_params(request)) {
  // F1 counts its start latent from the first section on; the original loop adds it with the
  // last section's latents.
  latent_frames_ = request.variant == TransformerVariant::kF1 ? 1 : 0;
  if (!enabled()) return;
  lock_.emplace(dir_);
  remove_stale_temporaries(dir_);
  if (!request.resume) {
    make_folder(dir_);
    remove_engine_files(dir_);
    write_text_atomically(path(kParamsFile), request_to_json(request));
    return;
  }
  has_image_ = exists(path(kStartImageFile));
  has_end_image_ = exists(path(kEndImageFile));
  if (exists(path(kEndLatentFile))) end_latent_ = read_tensor(path(kEndLatentFile), "latent");
  if (exists(path(kConditioningFile))) cond_ = load_conditioning(path(kConditioningFile));
  for (std::size_t i = 1; exists(dir_ + "/" + timed_prompt_file(i)); ++i)
    timed_.push_back(load_conditioning(dir_ + "/" + timed_prompt_file(i)));
  if (exists(path(kStartLatentFile))) start_latent_ = read_tensor(path(kStartLatentFile), "latent");
  const int total = total_latent_sections(request.seconds, request.latent_window);
  int s = 0;
  for (; s < total; ++s) {
    const auto section = open_section(job_section_path(dir_, s));  // one open per section
    if (!section) break;
    // A section made with other parameters than job.json now says would mix two videos.
    const std::string made_with = saved_params(*section);
    if (!made_with.empty() && made_with != params_) {
      throw Error(dir_ + ": job.json was changed after section " + std::to_string(s + 1) +
                  " was made (" + params_difference(made_with, params_) +
                  "); put the old value back to continue, or start the job again with "
                  "\"framesmith-cli generate --restart\"");
    }
    // Only its path is kept: the latents are read again when the loop reaches the section.
    section_paths_.push_back(job_section_path(dir_, s));
    latent_frames_ += section->tensor("latents").size(2);
  }
  // A damaged section (cut short by a kill or a full disk) is set aside as NAME.damaged and
  // made again, with every section after it (each depends on the ones before).
  for (; s < total; ++s) {
    const std::string p = job_section_path(dir_, s);
    if (!exists(p)) continue;
    std::error_code ec;
    fs::rename(p, p + ".damaged", ec);
    if (ec) throw Error(p + ": damaged, and cannot be set aside (" + ec.message() + ")");
    damaged_.push_back(p);
  }
}

void JobStore::save_start_image(const at::Tensor& image_hw3) {
  if (!enabled() || has_image_) return;
  io::save_safetensors(path(kStartImageFile), {{"image", image_hw3.contiguous()}},
                       {{"framesmith", "job start image"}});
  has_image_ = true;
}

void JobStore::save_end_image(const at::Tensor& image_hw3) {
  if (!enabled() || has_end_image_) return;
  io::save_safetensors(path(kEndImageFile), {{"image", image_hw3.contiguous()}},
                       {{"framesmith", "job end image"}});
  has_end_image_ = true;
}

void JobStore::save_end_latent(const at::Tensor& latent) {
  if (!enabled() || end_latent_.defined()) return;
  io::save_safetensors(path(kEndLatentFile), {{"latent", latent}},
                       {{"framesmith", "job end latent"}});
  end_latent_ = latent;
}

void JobStore::save_timed_prompts(const std::vector<sampling::HunyuanConditioning>& later) {
  if (!enabled() || !timed_.empty()) return;
  for (std::size_t i = 0; i < later.size(); ++i)
    pipeline::save_conditioning(dir_ + "/" + timed_prompt_file(i + 1), later[i]);
  timed_ = later;
}

void JobStore::save_conditioning(const sampling::HunyuanConditioning& c) {
  if (!enabled() || cond_) return;
  pipeline::save_conditioning(path(kConditioningFile), c);
  cond_ = c;
}

void JobStore::save_start_latent(const at::Tensor& latent) {
  if (!enabled() || start_latent_.defined()) return;
  io::save_safetensors(path(kStartLatentFile), {{"latent", latent}},
                       {{"framesmith", "job start latent"}});
  start_latent_ = latent;
}

ResumedSections JobStore::resumed_sections() const {
  ResumedSections r;
  r.count = sections_saved();
  r.load = [paths = section_paths_](int section) {
    const std::string& p = paths.at(std::size_t(section));
    const auto file = open_section(p);
    if (!file) throw Error(p + ": the saved section can no longer be read");
    return file->tensor("latents").clone();  // off the mapping: the file may be replaced later
  };
  return r;
}

std::string JobStore::save_section(int section, int sections, const at::Tensor& latents) {
  latent_frames_ += latents.size(2);
  if (!enabled()) return std::string();
  const std::string p = job_section_path(dir_, section);
  io::save_safetensors(p, {{"latents", latents}},
                       {{"framesmith", "job section latents"},
                        {"section", std::to_string(section + 1)},
                        {"sections", std::to_string(sections)},
                        {"latent_frames", std::to_string(latent_frames_)},
                        {"params", params_}});
  return p;
}

}  // namespace pipeline
}  // namespace framesmith
