#include "framesmith/engine_cli.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "framesmith/bench.h"
#include "framesmith/error.h"
#include "framesmith/generation_options.h"
#include "framesmith/model_set.h"
#include "framesmith/pipeline.h"
#include "framesmith/units.h"
#include "golden/golden.h"
#include "memory/estimate_command.h"
#include "models/components.h"
#include "models/lora.h"
#include "randmodel/random_model_set.h"

namespace framesmith {
namespace {

int cmd_inspect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"inspect-model",
       "Lists each component of a model set (config, dtype, parameters, size) and names what is "
       "missing or malformed.",
       {"PATH|hf"},
       "",
       {{"--variant", "original or f1 (which transformer repository the hub cache holds)", false}}},
      args, 1);
  if (answered_help(o, out)) return 0;
  const std::string variant_name = o.get("--variant", "original");
  if (variant_name != "original" && variant_name != "f1")
    throw Error("--variant must be original or f1");
  const TransformerVariant variant =
      variant_name == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  ModelSet set = locate_model_set(o.positionals.at(0), variant);
  out << "model set: " << set.description << "\n";
  int problems = 0;
  for (Component c : all_components()) {
    const ComponentPath* p = set.find(c);
    out << "\n[" << folder_name(c) << "]\n";
    if (!p) {
      const std::string detail = set.missing_detail(c);
      out << "  MISSING: "
          << (detail.empty() ? "no " + std::string(folder_name(c)) + "/ found" : detail)
          << " (real weights: " << hub_repo_for(c, variant) << ")\n";
      ++problems;
      continue;
    }
    out << "  path:   " << p->path << "\n  origin: " << p->origin << "\n";
    ComponentInfo info = inspect_component(c, p->path);
    if (!info.class_name.empty()) out << "  class:  " << info.class_name << "\n";
    if (!info.config_summary.empty()) out << "  config: " << info.config_summary << "\n";
    if (info.parameters > 0) {
      out << "  params: " << info.parameters << " (" << std::fixed << std::setprecision(2)
          << info.parameters / 1e6 << " M), " << format_size(double(info.bytes)) << " stored\n";
      out << "  dtype:  ";
      bool first = true;
      for (const auto& [dt, n] : info.dtypes) {
        out << (first ? "" : ", ") << dt << " x" << n;
        first = false;
      }
      out << "\n";
    }
    for (const auto& note : info.notes) out << "  note:   " << note << "\n";
    for (const auto& pr : info.problems) {
      out << "  PROBLEM: " << pr << "\n";
      ++problems;
    }
    if (info.problems.empty()) out << "  ok\n";
  }
  out << "\n"
      << (problems ? std::to_string(problems) + " problem(s) found" : "all components ok") << "\n";
  return problems ? 1 : 0;
}

int cmd_make_tiny(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o =
      parse_command({"make-tiny-model",
                     "Writes the tiny random-weight model set (all eight components) into DIR.",
                     {"DIR"},
                     "",
                     {{"--seed", "random seed of the weights (default 0)", false}}},
                    args, 1);
  if (answered_help(o, out)) return 0;
  const double seed = o.number("--seed", 0);
  if (seed < 0 || seed != static_cast<double>(static_cast<unsigned long long>(seed)))
    throw Error("--seed needs a whole number 0, 1, 2, ...");
  const std::string dir = o.positionals.at(0);
  make_tiny_model(dir, static_cast<unsigned long long>(seed));
  out << "tiny model written to " << dir
      << " (random weights: its videos are noise; see README for the real weights)\n";
  return 0;
}

int cmd_check_golden(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"check-golden",
       "Runs every case of reference case-set folders and prints rel-L2 and max-abs per output.",
       {"DIR"},
       "DIR",
       {}},
      args, 1);
  if (answered_help(o, out)) return 0;
  int failed = 0, total = 0;
  for (const std::string& set : o.positionals) {
    out << "case set " << set << "\n";
    for (const auto& r : golden::run_case_set(set)) {
      ++total;
      out << "  " << std::left << std::setw(20) << r.case_name << " " << std::setw(26) << r.output;
      if (!r.error.empty()) {
        out << " ERROR " << r.error << "\n";
        ++failed;
        continue;
      }
      out << std::scientific << std::setprecision(2) << " rel-L2 " << r.rel_l2 << "  max-abs "
          << r.max_abs << "  tol " << r.tolerance << (r.passed ? "  ok" : "  FAIL") << "\n"
          << std::defaultfloat;
      if (!r.passed) ++failed;
    }
  }
  out << (total - failed) << " passed, " << failed << " failed\n";
  return failed ? 1 : 0;
}

// The LoRA folder's files with what their headers say (no model needed to list them).
int cmd_loras(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"loras",
       "Lists the LoRA folder's files: layout, rank, modules, size (from their headers).",
       {},
       "",
       option_specs({"--lora-dir"})},
      args, 1);
  if (answered_help(o, out)) return 0;
  const std::string dir = o.get("--lora-dir", default_lora_dir());
  if (dir.empty()) throw Error("no LoRA folder: HOME is not set (give --lora-dir DIR)");
  const std::vector<std::string> files = list_lora_files(dir);
  out << "LoRA folder: " << dir << "\n";
  if (files.empty()) {
    out << "  no .safetensors files (put LoRA files there, or give --lora FILE[:STRENGTH])\n";
    return 0;
  }
  int bad = 0;
  for (const std::string& f : files) {
    const LoraSummary s = summarize_lora_file(f);
    const std::string name = f.substr(dir.size() + 1);
    out << "  " << std::left << std::setw(32) << name << std::right;
    if (!s.problem.empty()) {
      out << " NOT USABLE: " << s.problem << "\n";
      ++bad;
      continue;
    }
    out << " " << std::setw(9) << to_string(s.layout) << "  rank " << std::setw(3) << s.rank << "  "
        << std::setw(4) << s.modules << " modules  " << format_size(double(s.bytes)) << "\n";
  }
  out << files.size() << " file(s)" << (bad ? ", " + std::to_string(bad) + " not usable" : "")
      << "; use one with --lora NAME[:STRENGTH]\n";
  return 0;
}

}  // namespace

std::string engine_commands_help() {
  return "  inspect-model PATH|hf     components, configs, dtypes, sizes and what is missing\n"
         "  make-tiny-model DIR [--seed N]  write the tiny random-weight model set\n"
         "  check-golden DIR...       run reference case sets, print rel-L2 per output\n"
         "  loras [--lora-dir DIR]    the LoRA folder's files: layout, rank, modules, size\n" +
         randmodel::make_random_model_help() + memory::estimate_command_help() +
         bench_commands_help();
}

int run_engine_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) return -1;
  try {
    if (args[0] == "inspect-model") return cmd_inspect(args, out, err);
    if (args[0] == "make-tiny-model") return cmd_make_tiny(args, out, err);
    if (args[0] == "check-golden") return cmd_check_golden(args, out, err);
    if (args[0] == "loras") return cmd_loras(args, out, err);
    if (args[0] == "make-random-model") return randmodel::run_make_random_model(args, out, err);
    if (args[0] == "estimate") return memory::run_estimate_command(args, out, err);
    if (args[0] == "bench") return run_bench_command(args, out, err);
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
  return -1;
}

}  // namespace framesmith
