// `make-random-model DIR [--config full|tiny|FILE] [--sparse] [--seed N] [--only a,b]
// [--dtype D] [--max-shard-size SIZE]`: options, then one summary line per component.
#include <iomanip>
#include <sstream>

#include "framesmith/error.h"
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

RandomModelOptions parse_options(const std::vector<std::string>& args) {
  RandomModelOptions o;
  o.dir = args.size() > 1 ? args[1] : "";
  if (o.dir.empty() || o.dir.rfind("--", 0) == 0)
    throw Error("make-random-model: the output folder DIR comes first");
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--sparse") {
      o.sparse = true;
      continue;
    }
    if (i + 1 >= args.size()) throw Error("make-random-model: " + a + " needs a value");
    const std::string& v = args[++i];
    if (a == "--config")
      o.config = v;
    else if (a == "--seed")
      o.seed = parse_seed(v).seed;
    else if (a == "--only")
      o.only = comma_list(v);
    else if (a == "--dtype")
      o.transformer_dtype = v;
    else if (a == "--max-shard-size")
      o.max_shard_bytes = static_cast<std::uint64_t>(parse_size(v));
    else
      throw Error("make-random-model: unknown option \"" + a + "\"");
  }
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
  if (args.size() < 2) {
    err << "usage:\n" << make_random_model_help();
    return 2;
  }
  const RandomModelReport r = write_random_model_set(parse_options(args), out);
  for (const WrittenComponentInfo& c : r.components)
    out << "  " << std::left << std::setw(16) << c.folder << std::right << std::setw(15)
        << c.parameters << " params  " << format_size(double(c.bytes)) << " in " << c.shards
        << " file" << (c.shards == 1 ? "" : "s") << "\n";
  out << "random model written to " << args[1] << " in " << std::fixed << std::setprecision(1)
      << r.seconds << " s (random weights: its videos are noise)\n";
  return 0;
}

}  // namespace framesmith::randmodel
