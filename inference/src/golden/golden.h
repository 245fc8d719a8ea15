// Reference parity: runs the cases of a case-set folder (format: shared/golden/README.md) and
// compares each output with the reference by relative L2 and max-abs error.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace framesmith::golden {

constexpr double kTolForward = 1e-5;  // single forwards: transformer, VAE, preview, encoders
constexpr double kTolSampler = 1e-4;  // samplers and the whole section loop

struct CaseResult {
  std::string case_name;  // e.g. "vae_decode"
  std::string output;     // e.g. "pixels_tiled"
  double rel_l2 = 0.0;    // ||out - ref|| / ||ref||
  double max_abs = 0.0;
  double tolerance = 0.0;
  bool passed = false;
  std::string error;  // non-empty when the case could not run
};

// One case file `<set>/<case>.safetensors`: in.* and out.* tensors plus string metadata.
class Case {
 public:
  Case(std::string set_dir, std::string name);
  const std::string& set_dir() const { return set_dir_; }
  const std::string& name() const { return name_; }
  bool has_in(const std::string& n) const { return file_->has("in." + n); }
  bool has_out(const std::string& n) const { return file_->has("out." + n); }
  at::Tensor in(const std::string& n) const;  // as float32/int64 CPU (integers kept integer)
  // in(n), or an undefined tensor where the case leaves the input out.
  at::Tensor in_optional(const std::string& n) const { return has_in(n) ? in(n) : at::Tensor(); }
  at::Tensor out(const std::string& n) const;
  std::vector<std::string> out_names() const;  // without the "out." prefix
  std::vector<std::string> in_names() const;
  bool has_meta(const std::string& key) const;
  std::string meta(const std::string& key) const;  // throws Error if absent
  double meta_double(const std::string& key) const;
  std::int64_t meta_int(const std::string& key) const;

 private:
  std::string set_dir_, name_;
  std::shared_ptr<io::SafeTensorsFile> file_;
};

// Compares `actual` with `expected` (both any dtype/device; compared in float64).
CaseResult compare(const std::string& case_name, const std::string& output,
                   const at::Tensor& actual, const at::Tensor& expected, double tolerance);

// Case runners, one per model part (each in its own golden_<part>.cpp). Each returns one
// CaseResult per compared output.
std::vector<CaseResult> run_transformer_forward(const Case& c);
std::vector<CaseResult> run_lora_forward(const Case& c);  // LoRA files, as FramePack-Studio loads
std::vector<CaseResult> run_preview_fake(const Case& c);
std::vector<CaseResult> run_vae_decode(const Case& c);
std::vector<CaseResult> run_vae_encode(const Case& c);
std::vector<CaseResult> run_sample(const Case& c);  // sample_cfg1, sample_cfg
std::vector<CaseResult> run_sample_teacache(const Case& c);
std::vector<CaseResult> run_sample_magcache(const Case& c);
std::vector<CaseResult> run_sections(const Case& c);
std::vector<CaseResult> run_sections_f1(const Case& c);
std::vector<CaseResult> run_sections_endframe(const Case& c);
std::vector<CaseResult> run_sections_timed(const Case& c);   // sections_timed, sections_timed_f1
std::vector<CaseResult> run_sections_extend(const Case& c);  // sections_extend, sections_extend_f1

// Runs every case of `set_dir`: each <case>.safetensors, and each case that cases.json names.
// A case without a runner, or named in cases.json without its file, is a failure with the
// case's name (error "no runner for this case" / "... missing"), never skipped or passed.
std::vector<CaseResult> run_case_set(const std::string& set_dir);

}  // namespace framesmith::golden
