// make-random-model: a model set with random weights at chosen sizes, written one tensor piece at
// a time (host memory stays at tens of MB whatever the model's size). --config full is the real
// FramePack set (42.9 GB, all eight components); --sparse writes exact headers over zero-filled
// holes, for tests that read headers only.
#pragma once
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace framesmith::randmodel {

struct RandomModelOptions {
  std::string dir;
  std::string config = "full";  // full | tiny | a transformer config.json
  bool sparse = false;
  std::uint64_t seed = 0;
  std::set<std::string> only;         // component folders to write; empty: all of the config's
  std::string transformer_dtype;      // "" = the config's (bf16 for full); float | bf16 | fp16 |
                                      // fp8_e4m3fn (Kijai's single float8 file)
  std::uint64_t max_shard_bytes = 0;  // 0 = each component's own (the hub's)
};

struct WrittenComponentInfo {
  std::string folder;
  std::int64_t parameters = 0;
  std::uint64_t bytes = 0;  // tensor data
  int shards = 0;           // 0 for components without weights
};

struct RandomModelReport {
  std::vector<WrittenComponentInfo> components;
  std::uint64_t total_bytes = 0;
  double seconds = 0;
  std::int64_t parameters(const std::string& folder) const;
};

// Plans, checks free disk space (Error naming what is needed and what is free), prints what it
// will write and where to `log`, then writes.
RandomModelReport write_random_model_set(const RandomModelOptions& o, std::ostream& log);

// `make-random-model DIR [options]` for the command line; returns the exit code.
int run_make_random_model(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err);
std::string make_random_model_help();

}  // namespace framesmith::randmodel
