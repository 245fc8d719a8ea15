// The table of case runners: kept apart from golden.cpp so that a part's own test links without
// every other part's runner.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "framesmith/error.h"
#include "golden/golden.h"
#include "golden/golden_encoders.h"
#include "golden/golden_text.h"

namespace framesmith::golden {

namespace {

using Runner = std::function<std::vector<CaseResult>(const Case&)>;

const std::vector<std::pair<std::string, Runner>>& runners() {
  static const std::vector<std::pair<std::string, Runner>> table = {
      {"transformer_forward", run_transformer_forward},
      {"preview_fake", run_preview_fake},
      {"vae_decode", run_vae_decode},
      {"vae_encode", run_vae_encode},
      {"sample_cfg1", run_sample},
      {"sample_cfg", run_sample},
      {"sections", run_sections},
      {"sections_f1", run_sections_f1},
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

}  // namespace

std::vector<CaseResult> run_case_set(const std::string& set_dir) {
  std::vector<CaseResult> all;
  for (const std::string& name : case_files(set_dir)) {
    auto it = std::find_if(runners().begin(), runners().end(),
                           [&](const auto& r) { return r.first == name; });
    if (it == runners().end()) {
      CaseResult r;
      r.case_name = name;
      r.error = "no runner for this case";
      all.push_back(r);
      continue;
    }
    try {
      Case c(set_dir, name);
      for (auto& r : it->second(c)) all.push_back(std::move(r));
    } catch (const std::exception& e) {
      CaseResult r;
      r.case_name = name;
      r.error = e.what();
      r.rel_l2 = INFINITY;
      all.push_back(r);
    }
  }
  // The LLaMA tokenizer case is JSON (made by Hugging Face's JS tokenizer), not safetensors.
  struct stat st {};
  if (::stat((set_dir + "/llama_tokenize.json").c_str(), &st) == 0) {
    try {
      for (auto& r : run_llama_tokenize(set_dir)) all.push_back(std::move(r));
    } catch (const std::exception& e) {
      CaseResult r;
      r.case_name = "llama_tokenize";
      r.error = e.what();
      all.push_back(r);
    }
  }
  if (all.empty()) throw Error(set_dir + ": no cases found (expected <case>.safetensors files)");
  return all;
}

}  // namespace framesmith::golden
