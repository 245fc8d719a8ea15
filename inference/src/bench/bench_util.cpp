#include "bench/bench_util.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>
#include <thread>

#include "framesmith/error.h"
#include "framesmith/generation_options.h"
#include "framesmith/pipeline.h"
#include "framesmith/units.h"

namespace framesmith::bench {

// Every option any bench subcommand reads; CLI11 refuses others, check_all_used those a
// subcommand does not read.
const std::vector<std::string>& bench_value_options() {
  static const std::vector<std::string> v = {
      "bands",         "chunk",         "chunks",       "conditioning", "config",
      "crf",           "device",        "dim",          "dtype",        "fraction",
      "heads",         "height",        "hz",           "image",        "inputs",
      "latent-frames", "latent-height", "latent-width", "lengths",      "long",
      "model",         "only",          "out",          "program",      "prompt-tokens",
      "repeat",        "resolution",    "resolutions",  "seconds",      "seed",
      "short",         "size",          "steps",        "text-tokens",  "threads",
      "tiling",        "trial-seconds", "vae-dtype",    "variant",      "vram-budget",
      "warmup",        "width",         "window",       "work"};
  return v;
}
const std::vector<std::string>& bench_flag_options() {
  static const std::vector<std::string> v = {"teacache", "sparse"};
  return v;
}

Options::Options(const std::vector<std::string>& args, std::size_t first,
                 const std::string& usage) {
  CommandSpec spec;
  spec.name = args.size() >= first && first > 0 ? "bench " + args[first - 1] : "bench";
  spec.description = usage;
  for (const std::string& n : bench_value_options()) spec.options.push_back({"--" + n, "", false});
  for (const std::string& n : bench_flag_options()) spec.options.push_back({"--" + n, "", true});
  const CommandOptions o = parse_command(spec, args, first);
  help_ = o.help;
  for (const auto& [name, vals] : o.values) values_[name.substr(2)] = vals.back();
  for (const std::string& f : o.flags) values_[f.substr(2)] = "1";
}

std::string Options::str(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  used_[key] = true;
  return it->second;
}

std::int64_t Options::integer(const std::string& key, std::int64_t fallback) const {
  const std::string v = str(key);
  if (v.empty()) return fallback;
  try {
    return std::stoll(v);
  } catch (const std::exception&) {
    throw Error("bench: --" + key + " wants an integer, got \"" + v + "\"");
  }
}

double Options::real(const std::string& key, double fallback) const {
  const std::string v = str(key);
  if (v.empty()) return fallback;
  try {
    return std::stod(v);
  } catch (const std::exception&) {
    throw Error("bench: --" + key + " wants a number, got \"" + v + "\"");
  }
}

std::int64_t Options::bytes(const std::string& key, std::int64_t fallback) const {
  const std::string v = str(key);
  return v.empty() ? fallback : parse_size(v);
}

void Options::check_all_used() const {
  std::string unknown;
  for (const auto& kv : values_)
    if (!used_.count(kv.first)) unknown += " --" + kv.first;
  if (!unknown.empty()) throw Error("bench: unknown option(s):" + unknown);
}

double Stats::quantile(double q) const {
  if (seconds.empty()) return 0.0;
  std::vector<double> s = seconds;
  std::sort(s.begin(), s.end());
  const double pos = q * double(s.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (pos - double(lo)) * (s[hi] - s[lo]);
}

double Stats::median() const {
  return quantile(0.5);
}
double Stats::min() const {
  return quantile(0.0);
}
double Stats::max() const {
  return quantile(1.0);
}

nlohmann::json Stats::to_json() const {
  return {{"median_s", median()},   {"min_s", min()},         {"max_s", max()},
          {"q1_s", quantile(0.25)}, {"q3_s", quantile(0.75)}, {"repeat", seconds.size()}};
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<std::int64_t> parse_list(const std::string& s) {
  std::vector<std::int64_t> v;
  for (const std::string& item : split_list(s)) v.push_back(std::stoll(item));
  if (v.empty()) throw Error("bench: empty list \"" + s + "\"");
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Stats time_repeats(int warmup, int repeat, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  Stats s;
  for (int i = 0; i < std::max(1, repeat); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    s.seconds.push_back(seconds_since(t0));
  }
  return s;
}

int apply_threads(const Options& o) {
  const std::int64_t n = o.integer("threads", 0);
  if (n < 0) throw Error("bench: --threads must be >= 1");
  if (n > 0) at::set_num_threads(static_cast<int>(n));
  return at::get_num_threads();
}

double psnr(const at::Tensor& a, const at::Tensor& reference) {
  const at::Tensor d = a.to(at::kDouble) - reference.to(at::kDouble);
  const double mse = d.pow(2).mean().item<double>();
  if (mse == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(4.0 / mse);  // peak-to-peak 2 for [-1, 1]
}

void print_line(std::ostream& out, const nlohmann::json& j) {
  out << j.dump() << std::endl;
}

std::string component_dir(const std::string& model, const std::string& component) {
  const std::string sub = model + "/" + component;
  return std::filesystem::exists(sub + "/config.json") ? sub : model;
}

nlohmann::json machine_json() {
  return {{"hardware_threads", std::thread::hardware_concurrency()},
          {"torch_threads", at::get_num_threads()},
          {"engine", engine_version()}};
}

}  // namespace framesmith::bench
