// framesmith-cli: argument parsing and the generate command (image decoding and MP4 output need
// Qt Gui and FFmpeg); the engine's own subcommands are delegated to run_engine_command.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace framesmith::app {

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace framesmith::app
