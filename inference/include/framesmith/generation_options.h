// The `generate` and `resume` options that framesmith-cli (app/) and framesmith-engine (no Qt, for
// machines with nothing but LibTorch) share: one parser, one mapping onto GenerationRequest, so
// that the two commands accept the same spelling of every parameter.
#pragma once
#include <initializer_list>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith {

// Options that take a value, and flags; anything else is an error, so typos are caught.
struct CommandOptions {
  std::map<std::string, std::vector<std::string>> values;  // every value given, in order
  std::vector<std::string> flags;
  std::vector<std::string> positionals;  // the arguments that are not options, in order
  // Non-empty when --help / -h was given: the command's help text (nothing else was checked).
  std::string help;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  // The last value given for `k` (a repeated option's last wins), `fallback` when absent.
  std::string get(const std::string& k, const std::string& fallback = "") const;
  bool flag(const std::string& f) const;
  // The value of `k` as a number (the whole text must be one); `fallback` when absent.
  double number(const std::string& k, double fallback) const;
  // Every value given for `k`, in order (--lora A --lora B).
  std::vector<std::string> all(const std::string& k) const;
};

// One command's arguments, declared once: CLI11 (Debian's libcli11-dev) parses them and writes
// the command's --help from the same declaration.
struct OptionSpec {
  std::string name;   // "--prompt"
  std::string help;   // "" : the shared text for the name (option_help), if any
  bool flag = false;  // takes no value
};
struct CommandSpec {
  std::string name;                      // "framesmith-cli generate"
  std::string description;               // what it does, for --help
  std::vector<std::string> positionals;  // required, in order ("JOBDIR")
  std::string more_positionals;  // "": no others; else the name of any number after them ("DIR")
  std::vector<OptionSpec> options;
};
// Parses args[first..] against `spec`. --help / -h: the result's `help` holds the text. Throws
// Error (CLI11's words, the command's name and "see --help") for an unknown option, a missing
// value or a missing or extra positional argument.
CommandOptions parse_command(const CommandSpec& spec, const std::vector<std::string>& args,
                             std::size_t first);
// Writes the help text when --help was asked for: the command then ends (exit status 0).
bool answered_help(const CommandOptions& o, std::ostream& out);
// Value options and flags by name, with the shared help texts.
std::vector<OptionSpec> option_specs(const std::vector<std::string>& value_opts,
                                     const std::vector<std::string>& flag_opts = {});
// The shared help text of a generation or runtime option ("" for others).
std::string option_help(const std::string& name);

// args[first..], options only (no positionals): parse_command with an unnamed spec.
CommandOptions parse_command_options(const std::vector<std::string>& args, std::size_t first,
                                     const std::vector<std::string>& value_opts,
                                     const std::vector<std::string>& flag_opts);

// The value options of a fresh job's parameters (--prompt ... --conditioning) and of where it
// runs (--model --device --vram-budget --preserve), for parse_command_options.
const std::vector<std::string>& generation_value_options();
const std::vector<std::string>& runtime_value_options();
const std::vector<std::string>& generation_flag_options();  // --teacache --no-teacache
// The lists one after another (a command's own options added to the shared ones).
std::vector<std::string> join_options(std::initializer_list<std::vector<std::string>> lists);

// The generation parameters from the options, over what `req` holds (FramePack's defaults, a
// --params file or a resumed job).
void apply_generation_options(const CommandOptions& o, GenerationRequest& req);
// Where and how the job runs; the same for a fresh and a resumed job.
void apply_runtime_options(const CommandOptions& o, GenerationRequest& req);
// Existing model and conditioning paths made absolute, so that the job's saved parameters (job
// folder, sidecar, MP4 metadata) still find them from another working folder.
void make_paths_absolute(GenerationRequest& req);
// A stopped job is never overwritten by accident: it holds work that resume can continue. Throws
// Error (naming `program`'s resume command and --restart) when job_dir holds an unfinished job
// with sections done and `restart` is false.
void refuse_unfinished_job(const std::string& job_dir, bool restart, const std::string& program);

}  // namespace framesmith
