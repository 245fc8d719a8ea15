#include "framesmith/generation_options.h"

#include <algorithm>
#include <filesystem>

#include "framesmith/error.h"
#include "framesmith/job_folder.h"
#include "framesmith/units.h"
#include "models/lora.h"

namespace framesmith {

std::string CommandOptions::get(const std::string& k, const std::string& fallback) const {
  auto it = values.find(k);
  return it == values.end() ? fallback : it->second.back();
}

std::vector<std::string> CommandOptions::all(const std::string& k) const {
  auto it = values.find(k);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

bool CommandOptions::flag(const std::string& f) const {
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

double CommandOptions::number(const std::string& k, double fallback) const {
  if (!has(k)) return fallback;
  const std::string text = get(k);
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("option " + k + " needs a number, not \"" + text + "\"");
}

const std::vector<std::string>& generation_value_options() {
  static const std::vector<std::string> v = {"--prompt",
                                             "--negative-prompt",
                                             "--variant",
                                             "--seconds",
                                             "--seed",
                                             "--steps",
                                             "--gs",
                                             "--cfg",
                                             "--rs",
                                             "--window",
                                             "--resolution",
                                             "--shift",
                                             "--conditioning",
                                             "--cache",
                                             "--teacache-threshold",
                                             "--magcache-threshold",
                                             "--magcache-max-skips",
                                             "--magcache-retention",
                                             "--lora",
                                             "--lora-dir",
                                             "--end-strength",
                                             "--blend-sections"};
  return v;
}

const std::vector<std::string>& runtime_value_options() {
  static const std::vector<std::string> v = {"--model", "--device", "--vram-budget", "--preserve"};
  return v;
}

const std::vector<std::string>& generation_flag_options() {
  static const std::vector<std::string> v = {"--teacache", "--no-teacache"};
  return v;
}

std::vector<std::string> join_options(std::initializer_list<std::vector<std::string>> lists) {
  std::vector<std::string> all;
  for (const auto& l : lists) all.insert(all.end(), l.begin(), l.end());
  return all;
}

void apply_generation_options(const CommandOptions& o, GenerationRequest& req) {
  if (o.has("--prompt")) req.prompt = o.get("--prompt");
  if (o.has("--negative-prompt")) req.negative_prompt = o.get("--negative-prompt");
  if (o.has("--variant")) {
    const std::string v = o.get("--variant");
    if (v != "original" && v != "f1") throw Error("--variant must be original or f1");
    req.variant = v == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  }
  req.seconds = o.number("--seconds", req.seconds);
  if (o.has("--seed")) {
    // Exact 64-bit integers (never through a double); -1 draws one, and the job records the seed
    // it used, so that its saved parameters give the same video again.
    const SeedChoice s = parse_seed(o.get("--seed"));
    req.seed = s.random ? random_seed() : s.seed;
  }
  req.steps = static_cast<int>(o.number("--steps", req.steps));
  req.distilled_cfg = o.number("--gs", req.distilled_cfg);
  req.cfg = o.number("--cfg", req.cfg);
  req.cfg_rescale = o.number("--rs", req.cfg_rescale);
  req.latent_window = static_cast<int>(o.number("--window", req.latent_window));
  req.resolution = static_cast<int>(o.number("--resolution", req.resolution));
  req.shift = o.number("--shift", req.shift);
  if (o.flag("--teacache")) req.cache = StepCache::kTeaCache;
  if (o.flag("--no-teacache")) req.cache = StepCache::kNone;
  if (o.has("--cache")) req.cache = parse_step_cache(o.get("--cache"));
  req.teacache_threshold = o.number("--teacache-threshold", req.teacache_threshold);
  req.magcache_threshold = o.number("--magcache-threshold", req.magcache_threshold);
  req.magcache_max_skips =
      static_cast<int>(o.number("--magcache-max-skips", req.magcache_max_skips));
  req.magcache_retention = o.number("--magcache-retention", req.magcache_retention);
  if (o.has("--conditioning")) req.conditioning_file = o.get("--conditioning");
  req.end_frame_strength = o.number("--end-strength", req.end_frame_strength);
  req.blend_sections = static_cast<int>(o.number("--blend-sections", req.blend_sections));
  // --lora FILE[:STRENGTH], repeatable: replaces the LoRAs of a --params file; a bare name is
  // looked up in the LoRA folder (--lora-dir, else the user's).
  if (o.has("--lora")) {
    const std::string dir = o.get("--lora-dir", default_lora_dir());
    req.loras.clear();
    for (const std::string& arg : o.all("--lora")) {
      LoraSpec spec = parse_lora_argument(arg);
      spec.path = resolve_lora_path(spec.path, dir);
      req.loras.push_back(spec);
    }
  }
}

void apply_runtime_options(const CommandOptions& o, GenerationRequest& req) {
  if (o.has("--model")) req.model_dir = o.get("--model");
  if (o.has("--device")) req.device = o.get("--device");
  if (o.has("--vram-budget")) req.vram_budget_bytes = parse_size(o.get("--vram-budget"));
  if (o.has("--preserve")) req.preserved_memory_bytes = parse_size(o.get("--preserve"));
}

void make_paths_absolute(GenerationRequest& req) {
  std::vector<std::string*> paths = {&req.model_dir, &req.conditioning_file,
                                     &req.input_video_source.path};
  for (LoraSpec& l : req.loras) paths.push_back(&l.path);
  for (std::string* p : paths) {
    std::error_code ec;
    if (p->empty() || !std::filesystem::exists(*p, ec)) continue;
    std::filesystem::path abs = std::filesystem::absolute(*p, ec).lexically_normal();
    if (ec) continue;
    if (!abs.has_filename() && abs.has_parent_path() && abs != abs.root_path())
      abs = abs.parent_path();  // "models/set/" names the same folder as "models/set"
    *p = abs.string();
  }
}

void refuse_unfinished_job(const std::string& job_dir, bool restart, const std::string& program) {
  const JobFolderInfo info = inspect_job_folder(job_dir);
  if (!info.has_job || info.finished() || info.sections_done == 0 || restart) return;
  throw Error(job_dir + " holds an unfinished job (" + std::to_string(info.sections_done) + " of " +
              std::to_string(info.sections_total) + " sections): continue it with \"" + program +
              " resume " + job_dir + "\", or pass --restart to start it again");
}

}  // namespace framesmith
