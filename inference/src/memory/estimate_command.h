// The `estimate` engine subcommand: prints the memory plan of a job without running it, e.g.
// "decode: chunk 8 latent frames, est. 3.1 GiB peak of 6.0 GiB budget".
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace framesmith::memory {

// args[0] == "estimate". Returns the exit code (2: usage). Throws Error on bad values or models.
int run_estimate_command(const std::vector<std::string>& args, std::ostream& out,
                         std::ostream& err);
// Its line for --help.
std::string estimate_command_help();

}  // namespace framesmith::memory
