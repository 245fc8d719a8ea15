// The engine's own subcommands, shared by framesmith-cli (app/) and the Qt-free framesmith-engine
// tool: inspect-model, make-tiny-model, check-golden, make-random-model, estimate, bench. Plain
// C++.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace framesmith {

// Runs `args[0]` (the subcommand) with its arguments. Returns the process exit code, or -1 when
// the subcommand is not one of the engine's. Errors go to `err` as one clear line.
int run_engine_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// One line per engine subcommand, for --help.
std::string engine_commands_help();

// framesmith-engine's own `generate` and `resume` (the whole pipeline without Qt or FFmpeg: a PPM
// start image in, one PPM per frame out); framesmith-cli has its own, with MP4 output. Returns
// -1 when args[0] is neither.
int run_engine_job_command(const std::vector<std::string>& args, std::ostream& out,
                           std::ostream& err);
std::string engine_job_commands_help();

// Writes a complete tiny model set (configs, deterministic random weights, tiny tokenizers) for
// every component the engine has. Its videos are noise: it exists to run the whole pipeline
// quickly without downloads.
void make_tiny_model(const std::string& dir, unsigned long long seed);

}  // namespace framesmith
