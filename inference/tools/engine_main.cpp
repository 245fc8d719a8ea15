// framesmith-engine: the engine's subcommands without Qt or FFmpeg, for CUDA machines that have
// nothing but LibTorch (the full front end is framesmith-cli).
#include <iostream>

#include "framesmith/engine_cli.h"
#include "framesmith/pipeline.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "framesmith-engine " << framesmith::engine_version() << "\n\ncommands:\n"
              << framesmith::engine_job_commands_help() << framesmith::engine_commands_help();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "framesmith-engine " << framesmith::engine_version() << "\n";
    return 0;
  }
  int rc = framesmith::run_engine_job_command(args, std::cout, std::cerr);
  if (rc == -1) rc = framesmith::run_engine_command(args, std::cout, std::cerr);
  if (rc == -1) {
    std::cerr << "error: unknown command \"" << args[0] << "\" (see --help)\n";
    return 2;
  }
  return rc;
}
