// The bench subcommands (inference/src/bench/*.cpp); dispatched by run_bench_command.
#pragma once
#include <ostream>

#include "bench/bench_util.h"

namespace framesmith::bench {

int bench_transformer(const Options& o, std::ostream& out);
int bench_sampling_peak(const Options& o, std::ostream& out);
int bench_vae_encode_peak(const Options& o, std::ostream& out);
int bench_vae_decode(const Options& o, std::ostream& out);
int bench_section(const Options& o, std::ostream& out);
int bench_make_random_model(const Options& o, std::ostream& out);
int bench_chunked_decode(const Options& o, std::ostream& out);
int bench_generate(const Options& o, std::ostream& out);
int bench_step_cache(const Options& o, std::ostream& out);
int bench_warm_models(const Options& o, std::ostream& out);
int bench_video_memory(const Options& o, std::ostream& out);
int bench_long_video(const Options& o, std::ostream& out);
int bench_budget(const Options& o, std::ostream& out);
int bench_telemetry(const Options& o, std::ostream& out);
int bench_attention(const Options& o, std::ostream& out);
int bench_memcpy(const Options& o, std::ostream& out);

}  // namespace framesmith::bench
