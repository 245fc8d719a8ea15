// `bench`: the engine's own benchmark harness (docs/benchmarks.md). Each subcommand times one
// piece of work over repeats and prints ONE JSON line with the median and the spread, so that a
// script can collect the numbers; ratios are measured side by side in the same process.
// Plain C++: the CLIs include this; torch stays inside the engine.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace framesmith {

// args[0] == "bench", args[1] the subcommand. Returns the exit status (2: bad usage).
int run_bench_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Help lines for the CLIs' command lists.
std::string bench_commands_help();

}  // namespace framesmith
