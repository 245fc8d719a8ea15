// `make-random-model DIR [--config full|tiny|FILE] [--sparse] [--seed N] [--only a,b]
// [--dtype D] [--max-shard-size SIZE]`: options, then one summary line per component.
#include <iomanip>
#include <sstream>

#include "framesmith/error.h"
#include "framesmith/generation_options.h"
#include "framesmith/units.h"
#include "randmodel/random_model_set.h"

namespace framesmith::randmodel {
namespace {

std::set<std::string> comma_list(const std::string& s) {
  std::set<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.insert(item);
  return out;
}

const CommandSpec& random_model_spec() {
  static const CommandSpec spec{
      "make-random-model",
      "Writes a model set of random weights at the real sizes and layout (full: all eight parts, "
      "42.9 GB).",
      {"DIR"},
      "",
      {{"--config", "full, tiny or a config file (default full)", false},
       {"--sparse", "headers only, no weight bytes (a sparse file)", true},
       {"--seed", "random seed", false},
       {"--only", "components, comma-separated (transformer,vae)", false},
       {"--dtype", "the transformer's dtype: bf16 or fp8_e4m3fn (Kijai's single file)", false},
       {"--max-shard-size", "largest shard file (5GB, ...)", false}}};
  return spec;
}

RandomModelOptions parse_options(const CommandOptions& c) {
  RandomModelOptions o;
  o.dir = c.positionals.at(0);
  o.sparse = c.flag("--sparse");
  if (c.has("--config")) o.config = c.get("--config");
  if (c.has("--seed")) o.seed = parse_seed(c.get("--seed")).seed;
  if (c.has("--only")) o.only = comma_list(c.get("--only"));
  if (c.has("--dtype")) o.transformer_dtype = c.get("--dtype");
  if (c.has("--max-shard-size"))
    o.max_shard_bytes = static_cast<std::uint64_t>(parse_size(c.get("--max-shard-size")));
  return o;
}

}  // namespace

std::string make_random_model_help() {
  return "  make-random-model DIR [--config full|tiny|FILE] [--sparse] [--seed N] [--only a,b]\n"
         "                            [--dtype bf16] [--max-shard-size SIZE]  random weights at\n"
         "                            the real sizes and layout (full: all 8 parts, 42.9 GB);\n"
         "                            --dtype fp8_e4m3fn: the transformer as Kijai's float8 file\n";
}

int run_make_random_model(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err) {
  const CommandOptions c = parse_command(random_model_spec(), args, 1);
  if (answered_help(c, out)) return 0;
  const RandomModelReport r = write_random_model_set(parse_options(c), out);
  for (const WrittenComponentInfo& c : r.components)
    out << "  " << std::left << std::setw(16) << c.folder << std::right << std::setw(15)
        << c.parameters << " params  " << format_size(double(c.bytes)) << " in " << c.shards
        << " file" << (c.shards == 1 ? "" : "s") << "\n";
  out << "random model written to " << args[1] << " in " << std::fixed << std::setprecision(1)
      << r.seconds << " s (random weights: its videos are noise)\n";
  return 0;
}

}  // namespace framesmith::randmodel
