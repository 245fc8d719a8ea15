// The table of case runners: kept apart from golden.cpp so that a part's own test links without
// every other part's runner.
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "framesmith/error.h"
#include "golden/golden.h"
#include "golden/golden_encoders.h"
#include "golden/golden_text.h"
#include "io/files.h"

namespace framesmith::golden {

namespace {

using Runner = std::function<std::vector<CaseResult>(const Case&)>;

const std::vector<std::pair<std::string, Runner>>& runners() {
  static const std::vector<std::pair<std::string, Runner>> table = {
      {"transformer_forward", run_transformer_forward},
      {"lora_forward", run_lora_forward},
      {"preview_fake", run_preview_fake},
      {"vae_decode", run_vae_decode},
      {"vae_encode", run_vae_encode},
      {"sample_cfg1", run_sample},
      {"sample_cfg", run_sample},
      {"sample_teacache", run_sample_teacache},
      {"sample_magcache", run_sample_magcache},
      {"sections", run_sections},
      {"sections_f1", run_sections_f1},
      {"sections_endframe", run_sections_endframe},
      {"sections_timed", run_sections_timed},
      {"sections_timed_f1", run_sections_timed},
      {"sections_extend", run_sections_extend},
      {"sections_extend_f1", run_sections_extend},
      {"clip_tokenize", run_clip_tokenize},
      {"clip_text_forward", run_clip_text_forward},
      {"llama_forward", run_llama_forward},
      {"image_prep", run_image_prep},
      {"siglip_forward", run_siglip_forward},
  };
  return table;
}

std::vector<std::string> case_files(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error(dir + ": cannot open case-set folder");
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    const std::string ext = ".safetensors";
    if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0)
      names.push_back(n.substr(0, n.size() - ext.size()));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// The cases cases.json names (its "cases" object's keys), empty when the set has no cases.json.
std::vector<std::string> listed_cases(const std::string& set_dir) {
  std::vector<std::string> names;
  const std::string path = set_dir + "/cases.json";
  if (!io::is_file(path)) return names;
  const nlohmann::json j = io::read_json_file(path, "the case set's cases.json");
  const auto it = j.find("cases");
  if (it == j.end()) return names;
  if (it->is_object()) {
    for (const auto& [name, _] : it->items()) names.push_back(name);
  } else if (it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) names.push_back(v.get<std::string>());
      if (v.is_object() && v.contains("name") && v["name"].is_string())
        names.push_back(v["name"].get<std::string>());
    }
  }
  return names;
}

CaseResult case_error(const std::string& name, const std::string& error) {
  CaseResult r;
  r.case_name = name;
  r.error = error;
  r.rel_l2 = INFINITY;
  return r;
}

}  // namespace

std::vector<CaseResult> run_case_set(const std::string& set_dir) {
  std::vector<std::string> files = case_files(set_dir);
  std::vector<std::string> names = files;
  for (const std::string& n : listed_cases(set_dir)) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  // The LLaMA tokenizer case is JSON (made by Hugging Face's JS tokenizer), not safetensors.
  const std::string llama_json = set_dir + "/llama_tokenize.json";
  if (io::is_file(llama_json) &&
      std::find(names.begin(), names.end(), "llama_tokenize") == names.end()) {
    names.push_back("llama_tokenize");
  }

  std::vector<CaseResult> all;
  for (const std::string& name : names) {
    if (name == "llama_tokenize") {
      if (!io::is_file(llama_json)) {
        all.push_back(case_error(name, "named in cases.json, but llama_tokenize.json is missing"));
        continue;
      }
      try {
        for (auto& r : run_llama_tokenize(set_dir)) all.push_back(std::move(r));
      } catch (const std::exception& e) {
        all.push_back(case_error(name, e.what()));
      }
      continue;
    }
    auto it = std::find_if(runners().begin(), runners().end(),
                           [&](const auto& r) { return r.first == name; });
    if (it == runners().end()) {
      all.push_back(case_error(name, "no runner for this case"));
      continue;
    }
    if (std::find(files.begin(), files.end(), name) == files.end()) {
      all.push_back(
          case_error(name, "named in cases.json, but " + name + ".safetensors is missing"));
      continue;
    }
    try {
      Case c(set_dir, name);
      for (auto& r : it->second(c)) all.push_back(std::move(r));
    } catch (const std::exception& e) {
      all.push_back(case_error(name, e.what()));
    }
  }
  if (all.empty()) throw Error(set_dir + ": no cases found (expected <case>.safetensors files)");
  return all;
}

}  // namespace framesmith::golden
