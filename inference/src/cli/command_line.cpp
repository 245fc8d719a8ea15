// Command lines through CLI11: every command of both programs declares its arguments as a
// CommandSpec; this file turns that into a CLI::App, parses, and maps the result back onto
// CommandOptions (whose readers are unchanged).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <sstream>

#include "framesmith/error.h"
#include "framesmith/generation_options.h"

namespace framesmith {
namespace {

const std::map<std::string, std::string>& help_table() {
  static const std::map<std::string, std::string> t = {
      {"--model", "model folder (transformer/, vae/, ...), or hf / hf:DIR for the hub cache"},
      {"--image", "start image (PNG, JPEG, ...)"},
      {"--out", "the video to write (.mp4)"},
      {"--prompt", "what happens; timed: \"[0s: a cat sits] [2s: it jumps]\""},
      {"--negative-prompt", "what to avoid (used with --cfg > 1)"},
      {"--variant", "original (backward sections) or f1 (forward)"},
      {"--seconds", "video length in seconds (default 5)"},
      {"--seed", "random seed, -1 draws one (default 31337)"},
      {"--steps", "sampler steps per section (default 25)"},
      {"--gs", "distilled CFG scale (default 10)"},
      {"--cfg", "real CFG scale, 1 = off (default 1)"},
      {"--rs", "CFG rescale (default 0)"},
      {"--window", "latent window size (default 9)"},
      {"--resolution", "bucket family: the picture is cropped to the nearest bucket (default 640)"},
      {"--shift", "flow shift; 0 = by resolution (default)"},
      {"--conditioning", "embeddings file (safetensors) instead of encoding the prompt"},
      {"--cache", "step cache: none, teacache (default) or magcache"},
      {"--teacache", "same as --cache teacache"},
      {"--no-teacache", "same as --cache none"},
      {"--teacache-threshold", "TeaCache's rel_l1_thresh (default 0.15)"},
      {"--magcache-threshold", "MagCache error threshold (default 0.1)"},
      {"--magcache-max-skips", "MagCache: most steps skipped in a row (default 2)"},
      {"--magcache-retention", "MagCache: share of first steps always computed (default 0.25)"},
      {"--lora", "FILE or NAME[:STRENGTH], repeatable; names from --lora-dir"},
      {"--lora-dir", "LoRA folder (default ~/.local/share/framesmith/loras)"},
      {"--end-image", "end frame image (original model)"},
      {"--end-strength", "end frame strength 0..1 (default 1)"},
      {"--blend-sections", "timed prompts: sections over which a change is blended (default 0)"},
      {"--video", "extend this video (FFmpeg reads it) instead of starting from --image"},
      {"--extend", "forward (F1 model) or backward (original model; default: by --variant)"},
      {"--video-context", "video extension: clean context latents 1..10 (default 5)"},
      {"--device", "cpu, cuda or cuda:N (default cpu)"},
      {"--vram-budget", "device memory to plan for (6GiB, 512MiB; on the CPU: a simulated card)"},
      {"--preserve", "device memory left free (default 6GiB)"},
      {"--events", "write every engine event as JSON lines to this file"},
      {"--params", "parameters from a job file (.json) or a Framesmith video (.mp4)"},
      {"--job", "the job file (.json) to run (same as --params)"},
      {"--job-dir", "the job folder (default: <out stem>.job/)"},
      {"--restart", "start the job folder's job again instead of refusing"},
      {"--crf", "H.264 quality 0..51 (default 16; 0 = lossless)"},
      {"--quiet", "no progress line"},
  };
  return t;
}

}  // namespace

std::string option_help(const std::string& name) {
  const auto it = help_table().find(name);
  return it == help_table().end() ? std::string() : it->second;
}

bool answered_help(const CommandOptions& o, std::ostream& out) {
  if (o.help.empty()) return false;
  out << o.help;
  return true;
}

std::vector<OptionSpec> option_specs(const std::vector<std::string>& value_opts,
                                     const std::vector<std::string>& flag_opts) {
  std::vector<OptionSpec> specs;
  for (const std::string& n : value_opts) specs.push_back({n, "", false});
  for (const std::string& n : flag_opts) specs.push_back({n, "", true});
  return specs;
}

CommandOptions parse_command(const CommandSpec& spec, const std::vector<std::string>& args,
                             std::size_t first) {
  CLI::App app{spec.description, spec.name};
  app.set_help_flag("-h,--help", "this help");
  // Options may come before, between and after the positional arguments, as before.
  app.allow_windows_style_options(false);
  std::vector<std::vector<std::string>> values(spec.options.size());
  std::vector<CLI::Option*> declared;
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    const OptionSpec& o = spec.options[i];
    const std::string help = o.help.empty() ? option_help(o.name) : o.help;
    if (o.flag) {
      declared.push_back(app.add_flag(o.name, help));
    } else {
      // One value per occurrence; repeated options keep every value (--lora A --lora B).
      declared.push_back(app.add_option(o.name, values[i], help)
                             ->expected(1)
                             ->allow_extra_args(false)
                             ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll));
    }
  }
  std::vector<std::string> positionals;
  if (!spec.positionals.empty() || !spec.more_positionals.empty()) {
    std::string names;
    for (const std::string& p : spec.positionals) names += (names.empty() ? "" : " ") + p;
    if (!spec.more_positionals.empty())
      names += (names.empty() ? "" : " ") + spec.more_positionals + "...";
    // CLI11 names a positional like an option: letters, digits and '_' only.
    std::string id;
    const std::string& first_name =
        spec.positionals.empty() ? spec.more_positionals : spec.positionals.front();
    for (char c : first_name) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    CLI::Option* p = app.add_option(id, positionals, names);
    p->expected(static_cast<int>(spec.positionals.size()),
                spec.more_positionals.empty() ? static_cast<int>(spec.positionals.size())
                                              : CLI::detail::expected_max_vector_size);
    if (!spec.positionals.empty()) p->required();
  }
  // An unknown option is named as such (CLI11 would first complain about the extra positional
  // argument its value looks like).
  for (std::size_t i = first; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h" || a.rfind("--", 0) != 0) continue;
    const std::string name = a.substr(0, a.find('='));
    const auto it = std::find_if(spec.options.begin(), spec.options.end(),
                                 [&](const OptionSpec& o) { return o.name == name; });
    if (it == spec.options.end())
      throw Error((spec.name.empty() ? std::string() : spec.name + ": ") + "unknown option \"" +
                  name + "\" (see " + (spec.name.empty() ? "--help" : spec.name + " --help") + ")");
    if (!it->flag && name == a) ++i;  // its value, whatever it looks like
  }
  // CLI11 reads the arguments back to front from a vector.
  std::vector<std::string> rest(
      args.begin() + static_cast<std::ptrdiff_t>(std::min(first, args.size())), args.end());
  std::reverse(rest.begin(), rest.end());
  CommandOptions out;
  try {
    app.parse(rest);
  } catch (const CLI::CallForHelp&) {
    out.help = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    const std::string who = spec.name.empty() ? std::string() : spec.name + ": ";
    std::string what = e.what();
    // The old parser's words for the commonest mistake, which scripts and tests look for: the
    // first unknown option (else the first extra argument).
    for (const char* prefix : {"The following argument was not expected: ",
                               "The following arguments were not expected: "}) {
      const std::string p = prefix;
      if (what.rfind(p, 0) != 0) continue;
      std::istringstream list(what.substr(p.size()));
      std::string arg, first_extra, first_option;
      while (list >> arg) {
        if (first_extra.empty()) first_extra = arg;
        if (first_option.empty() && arg.rfind("-", 0) == 0) first_option = arg;
      }
      what = !first_option.empty() ? "unknown option \"" + first_option + "\""
                                   : "unexpected argument \"" + first_extra + "\"";
      break;
    }
    throw Error(who + what + " (see " + (spec.name.empty() ? "--help" : spec.name + " --help") +
                ")");
  }
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    if (declared[i]->count() == 0) continue;
    if (spec.options[i].flag)
      out.flags.push_back(spec.options[i].name);
    else
      out.values[spec.options[i].name] = values[i];
  }
  out.positionals = positionals;
  return out;
}

CommandOptions parse_command_options(const std::vector<std::string>& args, std::size_t first,
                                     const std::vector<std::string>& value_opts,
                                     const std::vector<std::string>& flag_opts) {
  CommandSpec spec;
  spec.options = option_specs(value_opts, flag_opts);
  return parse_command(spec, args, first);
}

}  // namespace framesmith
