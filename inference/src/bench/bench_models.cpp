// bench transformer / vae-decode / section / make-random-model: forward times of the engine's
// models on given weights, with the golden cases' inputs or random ones of a documented shape.
#include <ATen/core/grad_mode.h>

#include <filesystem>
#include <fstream>

#include "bench/bench_commands.h"
#include "bench/bench_util.h"
#include "framesmith/error.h"
#include "golden/golden_transformer.h"
#include "io/files.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/section_loop.h"

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
  at::manual_seed(0);
  TransformerInputs in;
  in.hidden_states = at::randn({1, cfg.in_channels, t, h, w});
  in.timestep = at::full({1}, 500.0);
  in.encoder_hidden_states = at::randn({1, text, cfg.text_embed_dim});
  in.encoder_attention_mask = at::arange(text).lt(std::min<std::int64_t>(64, text)).unsqueeze(0);
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

// Writes a model set with random weights: transformer (--config tiny|full|FILE, --dtype) and VAE
// (the real HunyuanVideo VAE's config unless --config tiny). For GPU timing without a download;
// tensors are made one at a time so that host memory holds only the stored copy.
int bench_make_random_model(const Options& o, std::ostream& out) {
  const std::string dir = o.str("out");
  if (dir.empty()) throw Error("bench make-random-model: --out DIR is required");
  const std::string which = o.str("config", "full");
  const at::ScalarType dtype = parse_dtype(o.str("dtype", "bf16"));
  o.check_all_used();
  TransformerConfig tc;
  VaeConfig vc;
  if (which == "full") {
    tc.has_image_proj = true;  // FramePackI2V_HY's layout
    tc.has_clean_x_embedder = true;
  } else {
    tc = TransformerConfig::from_json(io::read_json_file(which, "--config"));
  }
  auto write = [&](const std::string& sub, nlohmann::json config,
                   const std::vector<ParamSpec>& specs, at::ScalarType dt, const char* cls) {
    std::filesystem::create_directories(dir + "/" + sub);
    config["_class_name"] = cls;
    std::ofstream(dir + "/" + sub + "/config.json") << config.dump(2);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    std::uint64_t seed = 1;
    for (const ParamSpec& spec : specs)
      for (auto& [name, t] : make_random_weights({spec}, seed++, 0.02))
        tensors.emplace_back(name, t.to(dt));
    io::save_safetensors(dir + "/" + sub + "/diffusion_pytorch_model.safetensors", tensors);
    std::int64_t n = 0;
    for (const auto& kv : tensors) n += kv.second.numel();
    return n;
  };
  const std::int64_t nt = write("transformer", tc.to_json(), transformer_parameter_specs(tc), dtype,
                                "HunyuanVideoTransformer3DModelPacked");
  const std::int64_t nv =
      write("vae", vc.to_json(), vae_parameter_specs(vc), at::kFloat, "AutoencoderKLHunyuanVideo");
  print_line(out, {{"bench", "make-random-model"},
                   {"out", dir},
                   {"transformer_params", nt},
                   {"vae_params", nv}});
  return 0;
}

}  // namespace framesmith::bench
