// Golden checks of the text encoders (CLIP text, LLaMA), the image buckets and Lanczos crops, and
// the SigLIP preprocessing and vision tower.
#include "golden/golden_encoders.h"

#include <algorithm>
#include <string>

#include "framesmith/error.h"
#include "image/image_prep.h"
#include "models/clip_text.h"
#include "models/llama.h"
#include "models/siglip.h"

namespace framesmith::golden {
namespace {

// The numeric suffixes of the case's tensors named `<prefix><i>` (in or out), ascending.
std::vector<std::int64_t> indices(const std::vector<std::string>& names,
                                  const std::string& prefix) {
  std::vector<std::int64_t> r;
  for (const std::string& n : names) {
    if (n.rfind(prefix, 0) != 0) continue;
    const std::string tail = n.substr(prefix.size());
    if (tail.empty() || tail.find_first_not_of("0123456789") != std::string::npos) continue;
    r.push_back(std::stoll(tail));
  }
  std::sort(r.begin(), r.end());
  return r;
}

CaseResult exact(const std::string& case_name, const std::string& output, const at::Tensor& actual,
                 const at::Tensor& expected) {
  CaseResult r = compare(case_name, output, actual, expected, 0.0);
  r.passed = r.error.empty() && r.max_abs == 0.0;
  return r;
}

}  // namespace

std::vector<CaseResult> run_clip_text_forward(const Case& c) {
  const auto model = load_clip_text(c.set_dir() + "/text_encoder_2", at::kFloat, at::kCPU);
  const ClipTextOutput out = model->forward(c.in("input_ids"), c.in_optional("attention_mask"));
  std::vector<CaseResult> results;
  if (c.has_out("last_hidden_state"))
    results.push_back(compare(c.name(), "last_hidden_state", out.last_hidden_state,
                              c.out("last_hidden_state"), kTolForward));
  if (c.has_out("pooler_output"))
    results.push_back(
        compare(c.name(), "pooler_output", out.pooler_output, c.out("pooler_output"), kTolForward));
  if (results.empty()) throw Error(c.name() + ": no out.last_hidden_state or out.pooler_output");
  return results;
}

std::vector<CaseResult> run_llama_forward(const Case& c) {
  const auto model = load_llama(c.set_dir() + "/text_encoder", at::kFloat, at::kCPU);
  const std::vector<std::int64_t> wanted = indices(c.out_names(), "hidden_states.");
  if (wanted.empty()) throw Error(c.name() + ": no out.hidden_states.<i>");
  const std::vector<at::Tensor> hs =
      model->hidden_states(c.in("input_ids"), c.in_optional("attention_mask"));
  std::vector<CaseResult> results;
  for (std::int64_t i : wanted) {
    const std::string name = "hidden_states." + std::to_string(i);
    if (i >= static_cast<std::int64_t>(hs.size())) {
      CaseResult r;
      r.case_name = c.name();
      r.output = name;
      r.error = "the model returns only " + std::to_string(hs.size()) + " hidden states";
      results.push_back(r);
      continue;
    }
    results.push_back(
        compare(c.name(), name, hs[static_cast<std::size_t>(i)], c.out(name), kTolForward));
  }
  return results;
}

std::vector<CaseResult> run_image_prep(const Case& c) {
  const std::int64_t resolution = c.has_meta("resolution") ? c.meta_int("resolution") : 640;
  const std::vector<std::int64_t> images = indices(c.in_names(), "image.");
  if (images.empty()) throw Error(c.name() + ": no in.image.<i>");
  std::vector<CaseResult> results;
  for (std::int64_t i : images) {
    const std::string n = std::to_string(i);
    const at::Tensor img = c.in("image." + n);
    const image::Bucket b = image::find_nearest_bucket(img.size(0), img.size(1), resolution);
    if (c.has_out("bucket." + n))
      results.push_back(exact(c.name(), "bucket." + n,
                              at::tensor(std::vector<std::int64_t>{b.height, b.width}),
                              c.out("bucket." + n)));
    if (c.has_out("cropped." + n)) {
      const at::Tensor crop = image::resize_and_center_crop(img, b.width, b.height);
      CaseResult r = compare(c.name(), "cropped." + n, crop, c.out("cropped." + n), kTolUint8);
      r.passed = r.error.empty() && r.max_abs <= kTolUint8;  // uint8: judged by max-abs
      results.push_back(r);
    }
  }
  return results;
}

std::vector<CaseResult> run_siglip_forward(const Case& c) {
  const image::ImageProcessorConfig cfg = image::ImageProcessorConfig::load(
      c.set_dir() + "/feature_extractor/preprocessor_config.json");
  const at::Tensor img = c.in("image");
  const at::Tensor pixels = image::preprocess_image(img, cfg);
  std::vector<CaseResult> results;
  for (const std::string& name : c.out_names()) {
    if (name.rfind("pixel_values", 0) != 0) continue;
    const at::Tensor expected = c.out(name);
    at::Tensor actual = pixels;
    if (name != "pixel_values" && expected.dim() == 4) {
      // The same steps at another size (e.g. pixel_values_384): the size is the reference's.
      image::ImageProcessorConfig other = cfg;
      other.height = expected.size(2);
      other.width = expected.size(3);
      actual = image::preprocess_image(img, other);
    }
    results.push_back(compare(c.name(), name, actual, expected, kTolForward));
  }
  if (c.has_out("last_hidden_state")) {
    const auto model = load_siglip_vision(c.set_dir() + "/image_encoder", at::kFloat, at::kCPU);
    results.push_back(compare(c.name(), "last_hidden_state", model->forward(pixels),
                              c.out("last_hidden_state"), kTolForward));
  }
  if (results.empty()) throw Error(c.name() + ": no out.pixel_values* or out.last_hidden_state");
  return results;
}

}  // namespace framesmith::golden
