// Shared pieces of the bench subcommands: options, repeated timing with median and spread, and
// the one-line JSON result.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace framesmith::bench {

// "--key value" pairs and the bare flags --teacache and --sparse (value "1") after the
// subcommand name.
class Options {
 public:
  // Parsed by CLI11 against every bench option (framesmith/generation_options.h); `usage` is
  // the subcommand's line for its --help.
  explicit Options(const std::vector<std::string>& args, std::size_t first = 2,
                   const std::string& usage = "");
  // Non-empty when --help was given.
  const std::string& help() const { return help_; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string str(const std::string& key, const std::string& fallback = "") const;
  std::int64_t integer(const std::string& key, std::int64_t fallback) const;
  double real(const std::string& key, double fallback) const;
  std::int64_t bytes(const std::string& key, std::int64_t fallback) const;  // "6GB", "512MiB"
  // Names given but never read (typos): an Error lists them.
  void check_all_used() const;

 private:
  std::map<std::string, std::string> values_;
  std::string help_;
  mutable std::map<std::string, bool> used_;
};

// Times of the repeats, in seconds.
struct Stats {
  std::vector<double> seconds;
  double median() const;
  double quantile(double q) const;  // linear interpolation between order statistics
  double min() const;
  double max() const;
  // {"median_s","min_s","max_s","q1_s","q3_s","repeat"}
  nlohmann::json to_json() const;
};

double seconds_since(std::chrono::steady_clock::time_point t0);

// Runs `fn` `warmup` times untimed, then `repeat` times timed.
Stats time_repeats(int warmup, int repeat, const std::function<void()>& fn);

// "1024,2048,4096" -> its items (empty ones skipped); the integer form throws Error on an empty
// list.
std::vector<std::string> split_list(const std::string& s);
std::vector<std::int64_t> parse_list(const std::string& s);

// Applies --threads (LibTorch intra-op threads) and returns the count in use.
int apply_threads(const Options& o);

// Peak signal-to-noise ratio of `a` against `reference`, both in [-1, 1] (peak-to-peak 2), in dB
// (infinity when equal).
double psnr(const at::Tensor& a, const at::Tensor& reference);

// Prints `j` as one line.
void print_line(std::ostream& out, const nlohmann::json& j);

// A model set folder (with transformer/, vae/) or a component folder itself.
std::string component_dir(const std::string& model, const std::string& component);

// The machine the numbers come from: cores, threads, LibTorch version.
nlohmann::json machine_json();

}  // namespace framesmith::bench
