#include "framesmith/request_json.h"

#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "framesmith/utf8.h"

namespace framesmith {

std::string request_to_json(const GenerationRequest& r) {
  nlohmann::ordered_json j;
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
  j["teacache"] = r.teacache;
  j["shift"] = r.shift;
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
  auto get = [&](const char* key, auto& field) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    try {
      field = it->get<std::decay_t<decltype(field)>>();
    } catch (const std::exception&) {
      throw Error(std::string("job parameter \"") + key + "\" has the wrong type");
    }
  };
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
  get("teacache", r.teacache);
  get("shift", r.shift);
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
  need(r.vram_budget_bytes >= 0, "VRAM budget must not be negative");
  need(r.preserved_memory_bytes >= 0, "preserved memory must not be negative");
  need(r.device == "cpu" || r.device.rfind("cuda", 0) == 0,
       "device must be cpu, cuda or cuda:N, not \"" + escape_invalid_utf8(r.device) + "\"");
  // Texts are kept in job.json and the video's metadata, which are UTF-8 JSON: a malformed byte is
  // refused here, with where it is, rather than failing deep inside a serialiser or being
  // silently replaced (which would change the prompt, and so the video, on resume).
  const std::pair<const char*, const std::string*> texts[] = {
      {"the prompt", &r.prompt},
      {"the negative prompt", &r.negative_prompt},
      {"the model path", &r.model_dir},
      {"the conditioning path", &r.conditioning_file},
      {"the job folder path", &r.job_dir},
  };
  for (const auto& [what, text] : texts) {
    const std::size_t at = invalid_utf8_offset(*text);
    need(at == std::string::npos,
         std::string(what) + " is not valid UTF-8 (byte " + std::to_string(at) + ": \"" +
             escape_invalid_utf8(*text) + "\"); write it in UTF-8" +
             (std::string(what).find("path") != std::string::npos
                  ? " (rename the file or folder)"
                  : ""));
  }
}

}  // namespace framesmith
