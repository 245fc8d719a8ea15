// `bench SUBCOMMAND [options]`: dispatch, usage and errors (each subcommand prints one JSON line).
#include <map>

#include "bench/bench_commands.h"
#include "framesmith/bench.h"
#include "framesmith/error.h"

namespace framesmith {
namespace {

using BenchFn = int (*)(const bench::Options&, std::ostream&);

const std::map<std::string, BenchFn>& subcommands() {
  static const std::map<std::string, BenchFn> m = {
      {"transformer", bench::bench_transformer},
      {"vae-decode", bench::bench_vae_decode},
      {"section", bench::bench_section},
      {"chunked-decode", bench::bench_chunked_decode},
      {"generate", bench::bench_generate},
      {"step-cache", bench::bench_step_cache},
      {"warm-models", bench::bench_warm_models},
      {"video-memory", bench::bench_video_memory},
      {"long-video", bench::bench_long_video},
      {"budget", bench::bench_budget},
      {"telemetry", bench::bench_telemetry},
      {"attention", bench::bench_attention},
      {"sampling-peak", bench::bench_sampling_peak},
      {"vae-encode-peak", bench::bench_vae_encode_peak},
      {"memcpy", bench::bench_memcpy},
      {"make-random-model", bench::bench_make_random_model},
  };
  return m;
}

const char* kUsage =
    "usage: bench SUBCOMMAND [options]   (one JSON line per run; times in seconds)\n"
    "  transformer --model DIR [--inputs CASE.safetensors] [--repeat N] [--warmup N]\n"
    "              [--threads N] [--device D] [--dtype float|bf16]\n"
    "              [--latent-frames 9 --latent-height 8 --latent-width 8 --text-tokens 512]\n"
    "  vae-decode  --model DIR [--inputs CASE] [--tiling temporal|whole|spatial] [--repeat N]\n"
    "  section     --model DIR [--inputs CASE] [--steps N] [--window N] [--width --height]\n"
    "              [--teacache] [--device D] [--dtype D] [--vae-dtype D]\n"
    "  chunked-decode --model DIR [--chunks 16,4,1] [--bands 4] [--latent-frames ...]\n"
    "  generate    --model DIR [--seconds S] [--steps N] [--window N] [--resolution R]\n"
    "              [--vram-budget SIZE] [--device D] [--teacache] [--conditioning FILE]\n"
    "  step-cache  --model DIR [--repeat 3] (generate's options): TeaCache and MagCache vs none\n"
    "  warm-models --model DIR [--repeat 3] (generate's options): a second identical job with\n"
    "              the first one's models kept warm, time to the first sampler step\n"
    "  video-memory --model DIR [--short 5 --long 60] (generate's options)\n"
    "  long-video  --model DIR --image FILE [--seconds 5,20,60] [--resolution 320] [--steps 1]\n"
    "              [--window 9] [--variant original|f1] [--crf 16] [--program CLI] [--work DIR]\n"
    "  budget      --model DIR [--fraction 0.25] [--repeat N] (generate's options)\n"
    "  telemetry   --model DIR [--hz 10] [--repeat N] [--trial-seconds 1]\n"
    "  attention   [--lengths 1024,2048,4096] [--heads 4] [--dim 64] [--chunk 1024]\n"
    "  sampling-peak --model DIR [--resolutions 64,128,192] [--prompt-tokens 64] [--chunk 1024]\n"
    "              [--work DIR]\n"
    "  vae-encode-peak --model DIR [--resolutions 32,64,128,256]\n"
    "  memcpy      --device cuda [--size 1GiB]\n"
    "  make-random-model --out DIR [--config full|tiny|FILE] [--dtype bf16] [--sparse]\n"
    "              [--only transformer,vae]   (= make-random-model DIR, transformer + VAE)\n";

// The usage lines of one subcommand (its first line and the continuation lines after it).
std::string usage_of(const std::string& name) {
  const std::string all = kUsage;
  const auto at = all.find("\n  " + name + " ");
  if (at == std::string::npos) return "bench " + name;
  std::string lines = all.substr(at + 3, all.find('\n', at + 1) - at - 3);
  std::size_t next = all.find('\n', at + 1);
  while (next != std::string::npos && all.compare(next + 1, 14, "              ") == 0) {
    const std::size_t end = all.find('\n', next + 1);
    lines += "\n" + all.substr(next + 1, end - next - 1);
    next = end;
  }
  return "bench " + lines;
}

}  // namespace

std::string bench_commands_help() {
  return "  bench SUBCOMMAND ...      benchmarks, one JSON line each (bench --help)\n";
}

int run_bench_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() < 2 || args[1] == "--help" || args[1] == "-h") {
    (args.size() < 2 ? err : out) << kUsage;
    return args.size() < 2 ? 2 : 0;
  }
  auto it = subcommands().find(args[1]);
  if (it == subcommands().end()) {
    err << "bench: unknown subcommand \"" << args[1] << "\"\n" << kUsage;
    return 2;
  }
  try {
    const bench::Options options(args, 2, usage_of(args[1]));
    if (!options.help().empty()) {
      out << options.help();
      return 0;
    }
    return it->second(options, out);
  } catch (const std::exception& e) {
    err << "bench " << args[1] << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace framesmith
