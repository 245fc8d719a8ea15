// bench transformer / vae-decode / section / make-random-model: forward times of the engine's
// models on given weights, with the golden cases' inputs or random ones of a documented shape.
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/bench_commands.h"
#include "bench/bench_util.h"
#include "framesmith/error.h"
#include "golden/golden_transformer.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "memory/planner.h"
#include "memory/simulated_device.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/section_loop.h"
#include "randmodel/random_model_set.h"

namespace framesmith::bench {
namespace {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "float" || s == "float32" || s == "fp32") return at::kFloat;
  if (s == "bf16" || s == "bfloat16") return at::kBFloat16;
  if (s == "fp16" || s == "half" || s == "float16") return at::kHalf;
  throw Error("bench: unknown --dtype \"" + s + "\" (float, bf16, fp16)");
}

// A golden-format case file: `dir/name.safetensors`.
golden::Case open_case(const std::string& file) {
  const std::filesystem::path p(file);
  if (p.extension() != ".safetensors") throw Error("bench: --inputs wants a .safetensors file");
  return golden::Case(p.parent_path().string(), p.stem().string());
}

// FramePack-like positions: 1x context at 0 and after the window, then 2x and 4x context.
at::Tensor index_range(std::int64_t begin, std::int64_t count) {
  return at::arange(begin, begin + count, at::kLong).unsqueeze(0);
}

// Random transformer inputs. Default shape (FramePack's at 64x64 pixels): 9 latent frames of 8x8,
// 512 text tokens (64 valid), clean latents 2 (1x) + 2 (2x) + 16 (4x) frames, 729 image tokens.
TransformerInputs random_transformer_inputs(const TransformerConfig& cfg, const Options& o) {
  const std::int64_t t = o.integer("latent-frames", 9);
  const std::int64_t h = o.integer("latent-height", 8), w = o.integer("latent-width", 8);
  const std::int64_t text = o.integer("text-tokens", 512);
  const std::int64_t prompt = o.integer("prompt-tokens", 64);  // valid ones (the mask)
  at::manual_seed(0);
  TransformerInputs in;
  in.hidden_states = at::randn({1, cfg.in_channels, t, h, w});
  in.timestep = at::full({1}, 500.0);
  in.encoder_hidden_states = at::randn({1, text, cfg.text_embed_dim});
  in.encoder_attention_mask = at::arange(text).lt(std::min(prompt, text)).unsqueeze(0);
  in.pooled_projections = at::randn({1, cfg.pooled_projection_dim});
  if (cfg.guidance_embeds) in.guidance = at::full({1}, 10000.0);
  in.latent_indices = index_range(1, t);
  if (cfg.has_clean_x_embedder) {
    in.clean_latents = at::randn({1, cfg.in_channels, 2, h, w});
    in.clean_latent_indices = at::tensor({std::int64_t{0}, t + 1}, at::kLong).unsqueeze(0);
    in.clean_latents_2x = at::randn({1, cfg.in_channels, 2, h, w});
    in.clean_latent_indices_2x = index_range(t + 2, 2);
    in.clean_latents_4x = at::randn({1, cfg.in_channels, 16, h, w});
    in.clean_latent_indices_4x = index_range(t + 4, 16);
  }
  if (cfg.has_image_proj) in.image_embeddings = at::randn({1, 729, cfg.image_proj_dim});
  return in;
}

// Inputs onto the model's device; floating tensors stay float32 (the model casts them).
at::Tensor to_dev(const at::Tensor& t, at::Device d) {
  return t.defined() ? t.to(d) : t;
}

TransformerInputs move_inputs(TransformerInputs in, at::Device d) {
  for (at::Tensor* t :
       {&in.hidden_states, &in.timestep, &in.encoder_hidden_states, &in.encoder_attention_mask,
        &in.pooled_projections, &in.guidance, &in.latent_indices, &in.clean_latents,
        &in.clean_latent_indices, &in.clean_latents_2x, &in.clean_latent_indices_2x,
        &in.clean_latents_4x, &in.clean_latent_indices_4x, &in.image_embeddings})
    *t = to_dev(*t, d);
  return in;
}

// Waits for queued device work: reading one element back synchronises the stream.
void sync(const at::Tensor& t) {
  if (t.defined() && !t.device().is_cpu()) (void)t.flatten()[0].item<double>();
}

std::string shape_string(const at::Tensor& t) {
  std::string s;
  for (auto d : t.sizes()) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

}  // namespace

int bench_transformer(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench transformer: --model DIR is required");
  const at::Device device(o.str("device", "cpu"));
  const at::ScalarType dtype = parse_dtype(o.str("dtype", "float"));
  auto tr = load_transformer(component_dir(model, "transformer"), dtype, device);
  const std::string inputs = o.str("inputs");
  TransformerInputs in = inputs.empty() ? random_transformer_inputs(tr->config(), o)
                                        : golden::transformer_case_inputs(open_case(inputs));
  in = move_inputs(std::move(in), device);
  const int repeat = static_cast<int>(o.integer("repeat", 5));
  const int warmup = static_cast<int>(o.integer("warmup", 1));
  o.check_all_used();
  at::NoGradGuard no_grad;
  const Stats s = time_repeats(warmup, repeat, [&] { sync(tr->forward(in)); });
  nlohmann::json j = {{"bench", "transformer"},
                      {"inputs", inputs.empty() ? "random" : inputs},
                      {"hidden_states", shape_string(in.hidden_states)},
                      {"device", device.str()},
                      {"threads", threads}};
  j.update(s.to_json());
  print_line(out, j);
  return 0;
}

// The sampling step's activation peak on the simulated device against the planner's estimate
// (planner.h, estimate_sampling_activations), at the full model's widths: the transformer of
// --model (its config.json) cut to one dual and one single block with random weights (written to
// --work), one forward per resolution (FramePack's inputs: 9 latent frames, clean latents, 729
// image tokens, --prompt-tokens valid text tokens). The weights are loaded before the simulated
// device is installed, so the peak is the forward's activations alone (streaming and resident
// weights are planned separately). Per-block activations do not grow with the block count.
int bench_sampling_peak(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench sampling-peak: --model DIR is required");
  const std::string work = o.str("work", "/var/tmp/framesmith-sampling-peak");
  const std::vector<std::int64_t> sizes = parse_list(o.str("resolutions", "64,128,192"));
  const std::int64_t chunk = o.integer("chunk", 1024);
  const std::int64_t prompt = o.integer("prompt-tokens", 64);
  o.check_all_used();
  nlohmann::json cfg_json = io::read_json_file(component_dir(model, "transformer") + "/config.json",
                                               "the transformer config");
  cfg_json["num_layers"] = 1;
  cfg_json["num_single_layers"] = 1;
  const TransformerConfig cfg = TransformerConfig::from_json(cfg_json);
  std::filesystem::create_directories(work);
  {
    std::ofstream config(work + "/config.json");
    config << cfg_json.dump(2);
    if (!config) throw Error("bench sampling-peak: cannot write " + work + "/config.json");
  }
  io::save_safetensors(work + "/diffusion_pytorch_model.safetensors",
                       make_random_weights(transformer_parameter_specs(cfg), 7));
  auto tr = load_transformer(work, at::kFloat, at::kCPU);
  tr->attention_query_chunk = chunk;
  at::NoGradGuard no_grad;
  memory::SimulatedDeviceScope device(std::int64_t{1} << 40);
  nlohmann::json rows = nlohmann::json::array();
  for (std::int64_t px : sizes) {
    // The inputs' shape: latents of px/8, the prompt's valid tokens.
    const Options shape({"--latent-height", std::to_string(px / 8), "--latent-width",
                         std::to_string(px / 8), "--prompt-tokens", std::to_string(prompt)},
                        0);
    TransformerInputs in;
    {
      const memory::HostScope host;
      in = random_transformer_inputs(cfg, shape);
    }
    memory::simulated_device::reset_peak();
    const std::int64_t before = memory::simulated_device::stats().allocated;
    const auto t0 = std::chrono::steady_clock::now();
    { (void)tr->forward(in); }
    const double seconds = seconds_since(t0);
    const std::int64_t measured = memory::simulated_device::stats().peak - before;
    memory::JobShape job;
    job.height = job.width = px;
    job.text_tokens = prompt;
    const std::int64_t tokens = job.sampling_tokens(cfg);
    const std::int64_t estimate = memory::estimate_sampling_activations(
        cfg, tokens, 4, chunk, memory::attention_kernel_for(false));
    rows.push_back({{"resolution", px},
                    {"tokens", tokens},
                    {"measured_bytes", measured},
                    {"estimate_bytes", estimate},
                    {"ratio", double(measured) / double(estimate)},
                    {"forward_s", seconds}});
  }
  print_line(out, {{"bench", "sampling-peak"},
                   {"model", model},
                   {"chunk", chunk},
                   {"prompt_tokens", prompt},
                   {"threads", threads},
                   {"rows", rows}});
  return 0;
}

// The VAE encode's activation peak on the simulated device against the planner's estimate
// (estimate_vae_encode_activations, float32 on the CPU): one start frame of each size through the
// --model's VAE (its weights loaded before the device is installed, so only activations count).
int bench_vae_encode_peak(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench vae-encode-peak: --model DIR is required");
  const std::vector<std::int64_t> sizes = parse_list(o.str("resolutions", "32,64,128,256"));
  o.check_all_used();
  auto vae = load_vae(component_dir(model, "vae"), at::kFloat, at::kCPU);
  at::NoGradGuard no_grad;
  memory::SimulatedDeviceScope device(std::int64_t{1} << 40);
  nlohmann::json rows = nlohmann::json::array();
  for (std::int64_t px : sizes) {
    at::Tensor pixels;
    {
      const memory::HostScope host;
      at::manual_seed(0);
      pixels = at::rand({1, 3, 1, px, px}) * 2 - 1;
    }
    memory::simulated_device::reset_peak();
    const std::int64_t before = memory::simulated_device::stats().allocated;
    const auto t0 = std::chrono::steady_clock::now();
    { (void)vae->encode(pixels); }
    const double seconds = seconds_since(t0);
    const std::int64_t measured = memory::simulated_device::stats().peak - before;
    const std::int64_t estimate =
        memory::estimate_vae_encode_activations(vae->config(), px, px, 4, /*cpu=*/true);
    rows.push_back({{"resolution", px},
                    {"measured_bytes", measured},
                    {"estimate_bytes", estimate},
                    {"ratio", double(measured) / double(estimate)},
                    {"encode_s", seconds}});
  }
  print_line(
      out, {{"bench", "vae-encode-peak"}, {"model", model}, {"threads", threads}, {"rows", rows}});
  return 0;
}

int bench_vae_decode(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench vae-decode: --model DIR is required");
  const at::Device device(o.str("device", "cpu"));
  auto vae = load_vae(component_dir(model, "vae"), parse_dtype(o.str("dtype", "float")), device);
  const std::string inputs = o.str("inputs");
  // Default: 9 latent frames of 8x8 (33 frames of 64x64 pixels), scaled as the sampler gives them.
  at::manual_seed(0);
  const at::Tensor scaled =
      inputs.empty() ? at::randn({1, vae->config().latent_channels, o.integer("latent-frames", 9),
                                  o.integer("latent-height", 8), o.integer("latent-width", 8)})
                     : open_case(inputs).in("latents");
  const at::Tensor z = scaled.div(vae->config().scaling_factor).to(device);
  VaeTiling tiling;
  const std::string mode = o.str("tiling", "temporal");  // FramePack's default decode
  if (mode == "whole")
    tiling.temporal = false;
  else if (mode == "spatial")
    tiling.spatial = true;
  else if (mode != "temporal")
    throw Error("bench vae-decode: --tiling temporal|whole|spatial");
  const int repeat = static_cast<int>(o.integer("repeat", 5));
  const int warmup = static_cast<int>(o.integer("warmup", 1));
  o.check_all_used();
  at::NoGradGuard no_grad;
  const Stats s = time_repeats(warmup, repeat, [&] { sync(vae->decode(z, tiling)); });
  nlohmann::json j = {{"bench", "vae-decode"},      {"inputs", inputs.empty() ? "random" : inputs},
                      {"latents", shape_string(z)}, {"tiling", mode},
                      {"device", device.str()},     {"threads", threads}};
  j.update(s.to_json());
  print_line(out, j);
  return 0;
}

// One section of FramePack's original loop (sampling + decode), the start latent given. With
// --inputs: the `in.*` conditioning and start image of a `sections` case (its steps and window
// unless given); without: random conditioning of the transformer's sizes at --width x --height.
int bench_section(const Options& o, std::ostream& out) {
  const int threads = apply_threads(o);
  const std::string model = o.str("model");
  if (model.empty()) throw Error("bench section: --model DIR is required");
  const at::Device device(o.str("device", "cpu"));
  const at::ScalarType dtype = parse_dtype(o.str("dtype", "float"));
  auto tr = load_transformer(component_dir(model, "transformer"), dtype, device);
  auto vae = load_vae(component_dir(model, "vae"),
                      o.has("vae-dtype")       ? parse_dtype(o.str("vae-dtype"))
                      : dtype == at::kBFloat16 ? at::kHalf
                                               : dtype,
                      device);
  const std::string inputs = o.str("inputs");
  pipeline::SectionLoopParams p;
  pipeline::SectionLoopInputs in;
  at::manual_seed(0);
  const TransformerConfig& cfg = tr->config();
  std::int64_t width = o.integer("width", 64), height = o.integer("height", 64);
  if (!inputs.empty()) {
    const golden::Case c = open_case(inputs);
    in.conditioning.positive = {c.in("prompt_embeds"), c.in_optional("prompt_embeds_mask"),
                                c.in("prompt_poolers")};
    in.conditioning.image_embeddings = c.in_optional("image_embeddings");
    in.start_image = c.in("start_image");
    height = in.start_image.size(3);
    width = in.start_image.size(4);
    if (c.has_meta("steps")) p.steps = static_cast<int>(c.meta_int("steps"));
    if (c.has_meta("window")) p.latent_window_size = static_cast<int>(c.meta_int("window"));
  } else {
    in.conditioning.positive = {at::randn({1, 512, cfg.text_embed_dim}),
                                at::arange(512).lt(64).unsqueeze(0),
                                at::randn({1, cfg.pooled_projection_dim})};
    if (cfg.has_image_proj)
      in.conditioning.image_embeddings = at::randn({1, 729, cfg.image_proj_dim});
  }
  p.steps = static_cast<int>(o.integer("steps", p.steps));
  p.latent_window_size = static_cast<int>(o.integer("window", p.latent_window_size));
  p.use_teacache = o.has("teacache") && o.str("teacache") != "0";
  p.num_sections = 1;
  p.sample_dtype = dtype;
  p.transformer_device = device;
  at::NoGradGuard no_grad;
  // The start latent is made once, outside the timing (a section does not encode).
  in.start_latent = in.start_image.defined()
                        ? pipeline::encode_start_latent(*vae, in.start_image, p.tiling)
                        : at::randn({1, vae->config().latent_channels, 1, height / 8, width / 8});
  in.start_image = at::Tensor();
  const int repeat = static_cast<int>(o.integer("repeat", 3));
  const int warmup = static_cast<int>(o.integer("warmup", 1));
  o.check_all_used();

  // s/step from the step callbacks: each step's time since the previous step (or the start).
  std::vector<double> step_s;
  auto last = std::chrono::steady_clock::now();
  pipeline::SectionLoopCallbacks cb;
  cb.on_step = [&](const pipeline::StepProgress&, const at::Tensor&) {
    const auto now = std::chrono::steady_clock::now();
    step_s.push_back(std::chrono::duration<double>(now - last).count());
    last = now;
  };
  Stats s = time_repeats(warmup, repeat, [&] {
    last = std::chrono::steady_clock::now();
    pipeline::run_section_loop(*tr, *vae, in, p, cb);
  });
  Stats steps;
  steps.seconds = step_s;
  nlohmann::json j = {{"bench", "section"},
                      {"inputs", inputs.empty() ? "random" : inputs},
                      {"width", width},
                      {"height", height},
                      {"window", p.latent_window_size},
                      {"steps", p.steps},
                      {"teacache", p.use_teacache},
                      {"device", device.str()},
                      {"threads", threads},
                      {"s_per_step_median", steps.median()},
                      {"s_per_step_min", steps.min()},
                      {"s_per_step_max", steps.max()}};
  j.update(s.to_json());
  print_line(out, j);
  return 0;
}

// The old spelling of make-random-model (randmodel/random_model_set.h), kept for scripts: by
// default the transformer and VAE only (what the bench subcommands load), progress on stderr and
// one JSON line on `out`.
int bench_make_random_model(const Options& o, std::ostream& out) {
  randmodel::RandomModelOptions r;
  r.dir = o.str("out");
  if (r.dir.empty()) throw Error("bench make-random-model: --out DIR is required");
  r.config = o.str("config", "full");
  r.transformer_dtype = o.str("dtype", "");
  r.sparse = o.has("sparse") && o.str("sparse") != "0";
  r.seed = static_cast<std::uint64_t>(o.integer("seed", 0));
  for (const std::string& c : split_list(o.str("only", "transformer,vae"))) r.only.insert(c);
  o.check_all_used();
  const randmodel::RandomModelReport rep = randmodel::write_random_model_set(r, std::cerr);
  print_line(out, {{"bench", "make-random-model"},
                   {"out", r.dir},
                   {"transformer_params", rep.parameters("transformer")},
                   {"vae_params", rep.parameters("vae")},
                   {"bytes", rep.total_bytes},
                   {"seconds", rep.seconds}});
  return 0;
}

}  // namespace framesmith::bench
