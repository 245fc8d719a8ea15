// bench chunked-decode / generate / video-memory / budget / telemetry / attention / memcpy: what
// the memory governor costs and saves. Device memory is measured on the simulated device
// (memory/simulated_device.h), whose allocator counts every byte a phase puts "on the device".
#include <ATen/core/grad_mode.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>

#include "bench/bench_commands.h"
#include "bench/bench_util.h"
#include "framesmith/error.h"
#include "framesmith/pipeline.h"
#include "io/files.h"
#include "memory/chunked_decode.h"
#include "memory/device_probe.h"
#include "memory/simulated_device.h"
#include "memory/telemetry.h"
#include "models/attention.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/conditioning.h"

namespace framesmith::bench {
namespace {

namespace sim = memory::simulated_device;

constexpr std::int64_t kUnlimited = std::int64_t{1} << 40;  // "unconstrained" simulated budget

// Device bytes `fn` adds at its peak over what was allocated before it (weights already on the
// device excluded), on the installed simulated device.
std::int64_t peak_added(const std::function<void()>& fn) {
  const std::int64_t before = sim::stats().allocated;
  sim::reset_peak();
  fn();
  return sim::stats().peak - before;
}

double median_of(std::vector<double> v) {
  Stats s;
  s.seconds = std::move(v);
  return s.median();
}

}  // namespace

// Streamed (chunked) decode at several chunk sizes vs the whole decode, and diffusers' temporal
// tiles vs the whole decode: time, PSNR against the whole decode, device peak (activations).
int bench_chunked_decode(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench chunked-decode: --model DIR is required");
  const std::string dir = component_dir(model, "vae");
  auto store = std::make_shared<const io::TensorStore>(io::TensorStore::open(dir));
  auto vae = load_vae(dir, at::kFloat, at::kCPU);
  const std::int64_t t = o.integer("latent-frames", 9);
  const std::int64_t h = o.integer("latent-height", 8), w = o.integer("latent-width", 8);
  const std::vector<std::int64_t> chunks = parse_list(o.str("chunks", "16,4,1"));
  const std::int64_t bands = o.integer("bands", 4);  // plus "1 frame in N bands" when > 1
  const int repeat = static_cast<int>(o.integer("repeat", 3));
  o.check_all_used();
  at::NoGradGuard no_grad;
  at::manual_seed(0);
  const at::Tensor z = at::randn({1, vae->config().latent_channels, t, h, w});

  memory::SimulatedDeviceScope scope(kUnlimited);
  memory::StreamedVaeDecoder streamed(vae->config(), Weights(store, at::kFloat, at::kCPU));
  memory::DecodeContext ctx;
  ctx.device.simulated = true;
  streamed.load(ctx.device);

  struct Variant {
    std::string name;
    std::function<at::Tensor()> run;
    at::Tensor result;
    std::int64_t peak = 0;
    std::vector<double> times;
  };
  std::vector<Variant> vs;
  auto on_device = [](const std::function<at::Tensor()>& f) {
    return [f] {
      memory::OnDeviceScope d;
      return f();
    };
  };
  vs.push_back({"whole", on_device([&] { return vae->decode_tile(z); }), {}, 0, {}});
  VaeTiling temporal;
  vs.push_back({"diffusers temporal tiles",
                on_device([&, temporal] { return vae->decode(z, temporal); }),
                {},
                0,
                {}});
  std::vector<memory::DecodeRung> rungs;
  for (std::int64_t c : chunks) rungs.push_back({c, 1});
  if (bands > 1) rungs.push_back({1, bands});
  for (const memory::DecodeRung& r : rungs)
    vs.push_back({"streamed " + r.name(),
                  [&, r] {
                    ctx.rungs = {r};
                    ctx.rung = 0;
                    return streamed.decode_tile(z, ctx);
                  },
                  {},
                  0,
                  {}});
  for (Variant& v : vs) v.peak = peak_added([&] { v.result = v.run(); });  // also the warm-up
  for (int i = 0; i < repeat; ++i)  // interleaved, so that load drifts hit all alike
    for (Variant& v : vs) {
      const auto t0 = std::chrono::steady_clock::now();
      (void)v.run();
      v.times.push_back(seconds_since(t0));
    }
  const double whole_s = median_of(vs[0].times);
  nlohmann::json rows = nlohmann::json::array();
  for (Variant& v : vs) {
    const double p = psnr(v.result.to(at::kFloat), vs[0].result.to(at::kFloat));
    rows.push_back(
        {{"variant", v.name},
         {"median_s", median_of(v.times)},
         {"time_ratio", median_of(v.times) / whole_s},
         {"psnr_db", std::isinf(p) ? nlohmann::json("inf") : nlohmann::json(p)},
         {"max_abs",
          (v.result.to(at::kFloat) - vs[0].result.to(at::kFloat)).abs().max().item<double>()},
         {"device_peak_bytes", v.peak}});
  }
  streamed.unload();
  print_line(out,
             {{"bench", "chunked-decode"},
              {"latents", std::to_string(t) + "x" + std::to_string(h) + "x" + std::to_string(w)},
              {"repeat", repeat},
              {"threads", threads},
              {"rows", rows}});
  return 0;
}

namespace {

struct GenerateSettings {
  std::string model, device = "cpu", conditioning;
  double seconds = 1.0;
  int steps = 2, window = 9, resolution = 64;
  bool teacache = false;
  std::optional<StepCache> cache;  // set: replaces `teacache`
  std::int64_t budget = 0;         // 0: unconstrained
  bool keep_video = false;
  ModelReuse reuse = ModelReuse::kLoadPerJob;
};

struct GenerateRun {
  double seconds = 0.0;
  std::vector<double> step_s;  // time of each sampler step
  std::int64_t peak = 0;       // simulated device peak, or the largest `peak` a memory event gave
  int sections = 0;
  std::vector<std::string> residency;  // the governor's residency actions, first few
  Frames video;                        // with keep_video
  int steps_reused = 0;                // over all sections (calls: one per step at cfg 1)
  double first_step_s = -1;            // from the call until the first sampler step is done
  double sampling_start_s = -1;        // from the call until the transformer is placed to sample
};

// Random conditioning of the transformer's sizes (no text or image encoder needed).
std::string write_random_conditioning(const std::string& model) {
  const TransformerConfig cfg = TransformerConfig::from_json(io::read_json_file(
      component_dir(model, "transformer") + "/config.json", "the transformer config"));
  at::manual_seed(0);
  sampling::HunyuanConditioning c;
  c.positive = {at::randn({1, 512, cfg.text_embed_dim}), at::arange(512).lt(64).unsqueeze(0),
                at::randn({1, cfg.pooled_projection_dim})};
  c.negative = {at::zeros_like(c.positive.embeds), c.positive.mask.clone(),
                at::zeros_like(c.positive.poolers)};
  c.image_embeddings = at::randn({1, 729, cfg.image_proj_dim});
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("framesmith-bench-cond-" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  pipeline::save_conditioning(path, c);
  // Removed when the process ends.
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  };
  static Remove remove_at_exit{path};
  return path;
}

GenerateRun run_generate(const GenerateSettings& s) {
  GenerationRequest r;
  r.model_dir = s.model;
  r.conditioning_file = s.conditioning;
  r.seconds = s.seconds;
  r.steps = s.steps;
  r.latent_window = s.window;
  r.resolution = s.resolution;
  r.cache = s.cache ? *s.cache : s.teacache ? StepCache::kTeaCache : StepCache::kNone;
  r.device = s.device;
  r.model_reuse = s.reuse;
  if (s.conditioning.empty()) r.prompt = "a lighthouse at dusk, waves breaking";
  const bool simulated = s.device == "cpu";
  r.vram_budget_bytes = s.budget > 0 ? s.budget : simulated ? kUnlimited : 0;
  r.image.width = r.image.height = s.resolution;
  r.image.count = 1;
  r.image.rgb.resize(std::size_t(s.resolution) * s.resolution * 3);
  for (std::size_t i = 0; i < r.image.rgb.size(); ++i) r.image.rgb[i] = std::uint8_t(i * 37 % 251);

  GenerateRun run;
  std::unique_ptr<memory::SimulatedDeviceScope> scope;
  if (simulated) {
    scope = std::make_unique<memory::SimulatedDeviceScope>(r.vram_budget_bytes);
    sim::reset_counters();
  }
  auto last = std::chrono::steady_clock::now();
  const auto t0 = last;
  GenerationCallbacks cb;
  cb.on_progress = [&](const Progress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.phase == "sampling" && run.first_step_s < 0)
      run.first_step_s = std::chrono::duration<double>(now - t0).count();
    if (p.phase == "sampling" && p.step > 1)  // step 1 also carries the section's set-up
      run.step_s.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
  };
  cb.on_event = [&](const Event& e) {
    // The transformer's placement for the first section: sampling starts (job thread only).
    if (e.type == EventType::kResidency && e.phase == "sampling" && run.sampling_start_s < 0)
      run.sampling_start_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (e.type == EventType::kMemory)
      run.peak = std::max<std::int64_t>(run.peak, std::int64_t(e.number("peak")));
    if (e.type == EventType::kSectionDone) run.steps_reused += int(e.number("calls_reused"));
    if (e.type == EventType::kResidency && run.residency.size() < 4) {
      auto it = e.texts.find("action");
      if (it != e.texts.end()) run.residency.push_back(it->second);
    }
  };
  const GenerationResult res = generate(r, cb);
  run.seconds = seconds_since(t0);
  if (res.status != StatusCode::kOk)
    throw Error("bench: generation failed (" + std::string(to_string(res.status)) +
                "): " + res.message);
  run.sections = res.sections_total;
  if (s.keep_video) run.video = res.video;
  if (simulated) run.peak = sim::stats().peak;
  return run;
}

GenerateSettings generate_settings(const Options& o) {
  GenerateSettings s;
  s.model = o.str("model");
  if (s.model.empty()) throw Error("bench: --model DIR is required (make-tiny-model DIR)");
  s.device = o.str("device", "cpu");
  s.seconds = o.real("seconds", 1.0);
  s.steps = static_cast<int>(o.integer("steps", 2));
  s.window = static_cast<int>(o.integer("window", 9));
  s.resolution = static_cast<int>(o.integer("resolution", 64));
  s.teacache = o.has("teacache") && o.str("teacache") != "0";
  s.budget = o.bytes("vram-budget", 0);
  s.conditioning = o.str("conditioning");
  if (s.conditioning.empty()) s.conditioning = write_random_conditioning(s.model);
  return s;
}

nlohmann::json run_json(const GenerateRun& r) {
  Stats st;
  st.seconds = r.step_s;
  return {{"seconds", r.seconds},
          {"sections", r.sections},
          {"s_per_step_median", st.median()},
          {"peak_bytes", r.peak},
          {"residency", r.residency}};
}

}  // namespace

// One generate() per repeat at the given settings.
int bench_generate(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const GenerateSettings s = generate_settings(o);
  const int repeat = static_cast<int>(o.integer("repeat", 1));
  o.check_all_used();
  Stats total;
  GenerateRun last;
  for (int i = 0; i < repeat; ++i) {
    last = run_generate(s);
    total.seconds.push_back(last.seconds);
  }
  nlohmann::json j = {{"bench", "generate"},    {"device", s.device}, {"seconds_video", s.seconds},
                      {"steps", s.steps},       {"window", s.window}, {"resolution", s.resolution},
                      {"teacache", s.teacache}, {"budget", s.budget}, {"threads", threads},
                      {"last", run_json(last)}};
  j.update(total.to_json());
  print_line(out, j);
  return 0;
}

// PSNR of `a` against `b` (same size), in dB over all frames; infinite when equal.
double psnr(const Frames& a, const Frames& b) {
  if (a.rgb.size() != b.rgb.size() || a.rgb.empty())
    throw Error("bench step-cache: the videos differ in size");
  double sum = 0.0;
  for (std::size_t i = 0; i < a.rgb.size(); ++i) {
    const double d = double(a.rgb[i]) - double(b.rgb[i]);
    sum += d * d;
  }
  const double mse = sum / double(a.rgb.size());
  return mse == 0.0 ? std::numeric_limits<double>::infinity()
                    : 10.0 * std::log10(255.0 * 255.0 / mse);
}

// TeaCache and MagCache against no cache, same seed and settings: the job's wall time (median of
// the repeats, the three interleaved repeat by repeat) and the video's PSNR against no cache's.
int bench_step_cache(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  GenerateSettings s = generate_settings(o);
  const int repeat = static_cast<int>(o.integer("repeat", 3));
  o.check_all_used();
  s.keep_video = true;
  const StepCache caches[] = {StepCache::kNone, StepCache::kTeaCache, StepCache::kMagCache};
  Stats times[3];
  GenerateRun last[3];
  for (int i = 0; i < repeat; ++i)
    for (int c = 0; c < 3; ++c) {
      s.cache = caches[c];
      last[c] = run_generate(s);
      times[c].seconds.push_back(last[c].seconds);
    }
  nlohmann::json rows = nlohmann::json::array();
  for (int c = 0; c < 3; ++c) {
    const double p = psnr(last[c].video, last[0].video);
    nlohmann::json row = {
        {"cache", to_string(caches[c])},
        {"steps_reused", last[c].steps_reused},
        {"steps_total", last[c].sections * s.steps},
        {"speedup_vs_none", times[0].median() / times[c].median()},
        {"psnr_vs_none_db", std::isinf(p) ? nlohmann::json("inf") : nlohmann::json(p)}};
    row.update(times[c].to_json());
    rows.push_back(row);
  }
  print_line(out, {{"bench", "step-cache"},
                   {"seconds_video", s.seconds},
                   {"steps", s.steps},
                   {"window", s.window},
                   {"resolution", s.resolution},
                   {"device", s.device},
                   {"threads", threads},
                   {"caches", rows}});
  return 0;
}

// Warm models: the first job of a studio session loads and encodes everything, the second
// identical one takes it from the warm registry. Time from the call to the first sampler step,
// both jobs side by side in each repeat (the registry emptied before each pair); with the real
// encoders (no --conditioning) unless one is given.
int bench_warm_models(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const bool given = o.has("conditioning");
  GenerateSettings s = generate_settings(o);
  if (!given) s.conditioning.clear();
  const int repeat = static_cast<int>(o.integer("repeat", 3));
  o.check_all_used();
  s.reuse = ModelReuse::kKeepWarm;
  Stats first, second, whole_first, whole_second, start_first, start_second;
  std::int64_t kept_host = 0, kept_mapped = 0;
  for (int i = 0; i < repeat; ++i) {
    unload_warm_models();
    const GenerateRun a = run_generate(s);
    const GenerateRun b = run_generate(s);
    start_first.seconds.push_back(a.sampling_start_s);
    start_second.seconds.push_back(b.sampling_start_s);
    first.seconds.push_back(a.first_step_s);
    second.seconds.push_back(b.first_step_s);
    whole_first.seconds.push_back(a.seconds);
    whole_second.seconds.push_back(b.seconds);
    kept_host = kept_mapped = 0;
    for (const WarmModel& m : warm_models()) {
      kept_host += m.host_bytes;
      kept_mapped += m.mapped_bytes;
    }
  }
  unload_warm_models();
  print_line(out, {{"bench", "warm-models"},
                   {"model", s.model},
                   {"device", s.device},
                   {"resolution", s.resolution},
                   {"steps", s.steps},
                   {"threads", threads},
                   {"encoders", given ? "conditioning file" : "text and image encoders"},
                   {"first_job_to_sampling", start_first.to_json()},
                   {"second_job_to_sampling", start_second.to_json()},
                   {"ratio_to_sampling", start_second.median() / start_first.median()},
                   {"first_job_to_first_step", first.to_json()},
                   {"second_job_to_first_step", second.to_json()},
                   {"first_job_whole", whole_first.to_json()},
                   {"second_job_whole", whole_second.to_json()},
                   {"ratio_to_first_step", second.median() / first.median()},
                   {"kept_host_bytes", kept_host},
                   {"kept_mapped_bytes", kept_mapped}});
  return 0;
}

// Device peak of a short and a long video at the same settings (the long one must not need more
// memory: sections are sampled and decoded one at a time).
int bench_video_memory(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  GenerateSettings s = generate_settings(o);
  const double short_s = o.real("short", 5.0), long_s = o.real("long", 60.0);
  o.check_all_used();
  s.seconds = short_s;
  const GenerateRun a = run_generate(s);
  s.seconds = long_s;
  const GenerateRun b = run_generate(s);
  print_line(out, {{"bench", "video-memory"},
                   {"steps", s.steps},
                   {"window", s.window},
                   {"resolution", s.resolution},
                   {"threads", threads},
                   {"short", run_json(a)},
                   {"long", run_json(b)},
                   {"short_seconds_video", short_s},
                   {"long_seconds_video", long_s},
                   {"peak_ratio", double(b.peak) / double(std::max<std::int64_t>(1, a.peak))}});
  return 0;
}

// Unconstrained vs a budget of --fraction of the unconstrained peak, runs interleaved.
int bench_budget(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  GenerateSettings s = generate_settings(o);
  const double fraction = o.real("fraction", 0.25);
  const int repeat = static_cast<int>(o.integer("repeat", 3));
  o.check_all_used();
  s.budget = 0;
  const GenerateRun probe = run_generate(s);  // also the warm-up
  GenerateSettings limited = s;
  limited.budget = std::int64_t(double(probe.peak) * fraction);
  std::vector<double> t_free, t_limited;
  GenerateRun free_run, limited_run;
  for (int i = 0; i < repeat; ++i) {
    free_run = run_generate(s);
    limited_run = run_generate(limited);
    t_free.push_back(free_run.seconds);
    t_limited.push_back(limited_run.seconds);
  }
  print_line(out, {{"bench", "budget"},
                   {"fraction", fraction},
                   {"budget_bytes", limited.budget},
                   {"unconstrained_peak_bytes", probe.peak},
                   {"seconds_video", s.seconds},
                   {"steps", s.steps},
                   {"resolution", s.resolution},
                   {"threads", threads},
                   {"repeat", repeat},
                   {"unconstrained_median_s", median_of(t_free)},
                   {"budget_median_s", median_of(t_limited)},
                   {"time_ratio", median_of(t_limited) / median_of(t_free)},
                   {"unconstrained", run_json(free_run)},
                   {"limited", run_json(limited_run)}});
  return 0;
}

// The same transformer-forward workload with and without the telemetry sampler at --hz,
// interleaved; overhead = median(on) / median(off) - 1.
int bench_telemetry(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench telemetry: --model DIR is required");
  const double hz = o.real("hz", 10.0);
  const int repeat = static_cast<int>(o.integer("repeat", 7));
  const double trial_s = o.real("trial-seconds", 1.0);
  o.check_all_used();
  auto tr = load_transformer(component_dir(model, "transformer"), at::kFloat, at::kCPU);
  const TransformerConfig& cfg = tr->config();
  at::manual_seed(0);
  TransformerInputs in;
  in.hidden_states = at::randn({1, cfg.in_channels, 9, 8, 8});
  in.timestep = at::full({1}, 500.0);
  in.encoder_hidden_states = at::randn({1, 512, cfg.text_embed_dim});
  in.encoder_attention_mask = at::arange(512).lt(64).unsqueeze(0);
  in.pooled_projections = at::randn({1, cfg.pooled_projection_dim});
  if (cfg.guidance_embeds) in.guidance = at::full({1}, 10000.0);
  in.latent_indices = at::arange(1, 10, at::kLong).unsqueeze(0);
  if (cfg.has_image_proj) in.image_embeddings = at::randn({1, 729, cfg.image_proj_dim});
  at::NoGradGuard no_grad;

  memory::SimulatedDeviceScope scope(kUnlimited);
  auto probe = memory::make_simulated_probe();
  auto forward = [&] {
    memory::OnDeviceScope d;
    (void)tr->forward(in);
  };
  const auto t0 = std::chrono::steady_clock::now();
  forward();
  const int n = std::max(1, int(std::ceil(trial_s / std::max(1e-6, seconds_since(t0)))));
  // Wall time and process CPU time (all threads): on a shared machine the CPU time is far less
  // disturbed by other processes, and it includes the sampler thread's own work.
  std::vector<double> off, on, cpu_off, cpu_on;
  std::int64_t samples = 0;
  double busy = 0.0, on_total = 0.0;
  auto trial_off = [&] {
    const auto t = std::chrono::steady_clock::now();
    const std::clock_t c = std::clock();
    for (int k = 0; k < n; ++k) forward();
    cpu_off.push_back(double(std::clock() - c) / CLOCKS_PER_SEC);
    off.push_back(seconds_since(t));
  };
  auto trial_on = [&] {
    memory::TelemetryOptions opt;
    opt.period = std::chrono::milliseconds(std::int64_t(std::lround(1000.0 / hz)));
    memory::MemoryTelemetry tel(
        *probe, [](const Event&) {}, opt);
    const auto t = std::chrono::steady_clock::now();
    const std::clock_t c = std::clock();
    tel.start();
    for (int k = 0; k < n; ++k) forward();
    tel.stop();
    cpu_on.push_back(double(std::clock() - c) / CLOCKS_PER_SEC);
    on.push_back(seconds_since(t));
    samples += tel.samples();
    busy += tel.busy_seconds();
    on_total += on.back();
  };
  for (int i = 0; i < repeat; ++i) {  // ABBA order, so that a drifting load hits both alike
    if (i % 2 == 0) {
      trial_off();
      trial_on();
    } else {
      trial_on();
      trial_off();
    }
  }
  const double m_off = median_of(off), m_on = median_of(on);
  print_line(out, {{"bench", "telemetry"},
                   {"hz", hz},
                   {"forwards_per_trial", n},
                   {"repeat", repeat},
                   {"threads", threads},
                   {"off_median_s", m_off},
                   {"on_median_s", m_on},
                   {"overhead", m_on / m_off - 1.0},
                   {"cpu_off_median_s", median_of(cpu_off)},
                   {"cpu_on_median_s", median_of(cpu_on)},
                   {"cpu_overhead", median_of(cpu_on) / median_of(cpu_off) - 1.0},
                   {"samples", samples},
                   {"sampler_busy_fraction", busy / on_total}});
  return 0;
}

// Chunked exact attention vs plain softmax(QK^T / sqrt(d)) V: time, device peak, max |diff|.
int bench_attention(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::vector<std::int64_t> lengths = parse_list(o.str("lengths", "1024,2048,4096"));
  const std::int64_t heads = o.integer("heads", 4), dim = o.integer("dim", 64);
  const std::int64_t chunk = o.integer("chunk", 1024);
  const int repeat = static_cast<int>(o.integer("repeat", 3));
  o.check_all_used();
  at::NoGradGuard no_grad;
  memory::SimulatedDeviceScope scope(kUnlimited);
  nlohmann::json rows = nlohmann::json::array();
  for (std::int64_t n : lengths) {
    at::manual_seed(0);
    const at::Tensor q = at::randn({1, heads, n, dim}), k = at::randn({1, heads, n, dim}),
                     v = at::randn({1, heads, n, dim});
    auto plain = [&] {
      memory::OnDeviceScope d;
      return at::matmul(
          at::softmax(at::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(dim)), -1), v);
    };
    auto chunked = [&] {
      memory::OnDeviceScope d;
      return attention_chunked(q, k, v, chunk);
    };
    at::Tensor a, b;
    const std::int64_t peak_plain = peak_added([&] { a = plain(); });
    const std::int64_t peak_chunked = peak_added([&] { b = chunked(); });
    std::vector<double> tp, tc;
    for (int i = 0; i < repeat; ++i) {
      auto t = std::chrono::steady_clock::now();
      (void)plain();
      tp.push_back(seconds_since(t));
      t = std::chrono::steady_clock::now();
      (void)chunked();
      tc.push_back(seconds_since(t));
    }
    rows.push_back({{"length", n},
                    {"plain_median_s", median_of(tp)},
                    {"chunked_median_s", median_of(tc)},
                    {"time_ratio", median_of(tc) / median_of(tp)},
                    {"plain_peak_bytes", peak_plain},
                    {"chunked_peak_bytes", peak_chunked},
                    {"max_abs_diff", (a - b).abs().max().item<double>()}});
  }
  print_line(out, {{"bench", "attention"},
                   {"heads", heads},
                   {"dim", dim},
                   {"chunk", chunk},
                   {"repeat", repeat},
                   {"threads", threads},
                   {"rows", rows}});
  return 0;
}

// Host -> device copy bandwidth, pinned and pageable (what block streaming is bounded by).
int bench_memcpy(const Options& o, std::ostream& out) {
  const at::Device device(o.str("device", "cuda"));
  const std::int64_t bytes = o.bytes("size", std::int64_t{1} << 30);
  const int repeat = static_cast<int>(o.integer("repeat", 5));
  o.check_all_used();
  if (device.is_cpu()) throw Error("bench memcpy: needs --device cuda[:N]");
  nlohmann::json j = {{"bench", "memcpy"}, {"device", device.str()}, {"bytes", bytes}};
  for (bool pinned : {true, false}) {
    const at::Tensor host =
        at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(pinned));
    host.fill_(1);
    const Stats s = time_repeats(1, repeat, [&] {
      const at::Tensor d = host.to(device, /*non_blocking=*/pinned);
      (void)d[bytes - 1].item<std::uint8_t>();  // waits for the copy
    });
    j[pinned ? "pinned_gb_per_s" : "pageable_gb_per_s"] = double(bytes) / s.median() / 1e9;
  }
  print_line(out, j);
  return 0;
}

}  // namespace framesmith::bench
