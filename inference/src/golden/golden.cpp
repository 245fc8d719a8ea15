#include "golden/golden.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "framesmith/error.h"

namespace framesmith::golden {

Case::Case(std::string set_dir, std::string name)
    : set_dir_(std::move(set_dir)), name_(std::move(name)) {
  file_ = io::SafeTensorsFile::open(set_dir_ + "/" + name_ + ".safetensors");
}

namespace {
at::Tensor widen(at::Tensor t) {
  if (at::isFloatingType(t.scalar_type()) && t.scalar_type() != at::kFloat) t = t.to(at::kFloat);
  return t.clone();  // detach from the mapping: cases outlive nothing, tests mutate freely
}
}  // namespace

at::Tensor Case::in(const std::string& n) const {
  return widen(file_->tensor("in." + n));
}
at::Tensor Case::out(const std::string& n) const {
  return widen(file_->tensor("out." + n));
}

std::vector<std::string> Case::out_names() const {
  std::vector<std::string> r;
  for (const auto& n : file_->names())
    if (n.rfind("out.", 0) == 0) r.push_back(n.substr(4));
  return r;
}

std::vector<std::string> Case::in_names() const {
  std::vector<std::string> r;
  for (const auto& n : file_->names())
    if (n.rfind("in.", 0) == 0) r.push_back(n.substr(3));
  return r;
}

bool Case::has_meta(const std::string& key) const {
  return file_->header().metadata.count(key) != 0;
}

std::string Case::meta(const std::string& key) const {
  auto it = file_->header().metadata.find(key);
  if (it == file_->header().metadata.end())
    throw Error(file_->path() + ": metadata has no \"" + key + "\"");
  return it->second;
}

double Case::meta_double(const std::string& key) const {
  const std::string v = meta(key);
  try {
    return std::stod(v);
  } catch (const std::exception&) {
    throw Error(file_->path() + ": metadata \"" + key + "\" = \"" + v + "\" is not a number");
  }
}

std::int64_t Case::meta_int(const std::string& key) const {
  return static_cast<std::int64_t>(std::llround(meta_double(key)));
}

CaseResult compare(const std::string& case_name, const std::string& output,
                   const at::Tensor& actual, const at::Tensor& expected, double tolerance) {
  CaseResult r;
  r.case_name = case_name;
  r.output = output;
  r.tolerance = tolerance;
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream o;
    o << "shape " << actual.sizes() << " != reference " << expected.sizes();
    r.error = o.str();
    r.rel_l2 = INFINITY;
    r.max_abs = INFINITY;
    return r;
  }
  const at::Tensor a = actual.detach().to(at::kCPU).to(at::kDouble);
  const at::Tensor e = expected.detach().to(at::kCPU).to(at::kDouble);
  const double diff = (a - e).norm().item<double>();
  const double ref = e.norm().item<double>();
  r.rel_l2 = ref > 0 ? diff / ref : diff;
  r.max_abs = a.numel() ? (a - e).abs().max().item<double>() : 0.0;
  r.passed = std::isfinite(r.rel_l2) && r.rel_l2 <= tolerance;
  return r;
}

}  // namespace framesmith::golden
