// Golden checks of the sampling side: the latent preview, sample_hunyuan (UniPC, with and without
// real CFG) and both section loops. Parameters come from each case file's metadata, shapes from
// its tensors, models from the set's transformer/ and vae/ folders.
#include <ATen/CPUGeneratorImpl.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "golden/golden.h"
#include "models/magcache.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/conditioning.h"
#include "pipeline/preview.h"
#include "pipeline/section_loop.h"
#include "pipeline/timed_prompts.h"
#include "pipeline/video_extend.h"
#include "sampling/sample_hunyuan.h"

namespace framesmith::golden {
namespace {

double meta_or(const Case& c, const std::string& key, double fallback) {
  return c.has_meta(key) ? c.meta_double(key) : fallback;
}

// "shift": a number, or absent / "from mu" for FramePack's resolution-dependent shift.
std::optional<double> meta_shift(const Case& c) {
  if (!c.has_meta("shift")) return std::nullopt;
  const std::string v = c.meta("shift");
  if (v.empty() || !(std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '.')) {
    return std::nullopt;
  }
  return c.meta_double("shift");
}

void check_sampler(const Case& c) {
  if (c.has_meta("sampler") && c.meta("sampler") != "unipc") {
    throw Error(c.name() + ": sampler \"" + c.meta("sampler") + "\" is not supported (unipc only)");
  }
}

sampling::HunyuanConditioning conditioning(const Case& c) {
  sampling::HunyuanConditioning cond;
  // Timed-prompt cases hold prompt0_*, prompt1_*, ...: the first gives the shapes.
  const std::string p =
      c.has_in("prompt_embeds") || !c.has_in("prompt0_embeds") ? "prompt" : "prompt0";
  cond.positive.embeds = c.in(p + "_embeds");
  cond.positive.mask = c.in_optional(p + "_embeds_mask");
  cond.positive.poolers = c.in(p + "_poolers");
  cond.negative.embeds = c.in_optional("negative_prompt_embeds");
  cond.negative.mask = c.in_optional("negative_prompt_embeds_mask");
  cond.negative.poolers = c.in_optional("negative_prompt_poolers");
  cond.image_embeddings = c.in_optional("image_embeddings");
  return cond;
}

// "[3, 2, 2, 1, 0]" -> {3, 2, 2, 1, 0}
std::vector<int> parse_int_list(const std::string& s) {
  std::vector<int> v;
  std::string num;
  for (char ch : s) {
    if (std::isdigit(static_cast<unsigned char>(ch)) || ch == '-') {
      num += ch;
    } else if (!num.empty()) {
      v.push_back(std::stoi(num));
      num.clear();
    }
  }
  if (!num.empty()) v.push_back(std::stoi(num));
  return v;
}

// A JSON list of numbers ("[1.0, 1.14062]"); Error naming the key otherwise.
std::vector<double> parse_double_list(const Case& c, const std::string& key) {
  const nlohmann::json j = nlohmann::json::parse(c.meta(key), nullptr, false);
  if (!j.is_array()) throw Error(c.name() + ": metadata " + key + " is not a JSON list");
  std::vector<double> v;
  for (const auto& x : j) {
    if (!x.is_number()) throw Error(c.name() + ": metadata " + key + " holds a non-number");
    v.push_back(x.get<double>());
  }
  return v;
}

CaseResult failed(const Case& c, const std::string& output, const std::string& error) {
  CaseResult r;
  r.case_name = c.name();
  r.output = output;
  r.error = error;
  r.rel_l2 = INFINITY;
  r.max_abs = INFINITY;
  return r;
}

// A loop's picture input: (1, 3, 1, H, W) floats in [-1, 1] as the sections cases give it, or the
// uint8 H x W x 3 picture of the modes cases, which the worker takes as x / 127.5 - 1.
at::Tensor loop_image(const Case& c, const std::string& name) {
  const at::Tensor t = c.in_optional(name);
  if (!t.defined() || t.dim() != 3) return t;
  return pipeline::vae_pixels(t);
}

// A loop case's sampling parameters, from its metadata.
struct LoopMeta {
  int sections = 0, window = 0, steps = 0;
  std::uint64_t seed = 0;
  double gs = 10.0, cfg = 1.0, rs = 0.0;
  std::optional<double> shift;
};

LoopMeta loop_meta(const Case& c) {
  LoopMeta m;
  m.sections = static_cast<int>(c.meta_int("sections"));
  m.window = static_cast<int>(c.meta_int("window"));
  m.steps = static_cast<int>(c.meta_int("steps"));
  m.seed = static_cast<std::uint64_t>(c.meta_int("seed"));
  m.gs = c.meta_double("gs");
  m.cfg = meta_or(c, "cfg", 1.0);
  m.rs = meta_or(c, "rs", 0.0);
  m.shift = meta_shift(c);
  return m;
}

// Every out.* of the case against what the loop produced under that name; a missing one fails.
void compare_produced(const Case& c, const std::map<std::string, at::Tensor>& produced,
                      std::vector<CaseResult>& results) {
  for (const std::string& name : c.out_names()) {
    auto it = produced.find(name);
    if (it == produced.end()) {
      results.push_back(failed(c, name, "the loop produced no \"" + name + "\""));
      continue;
    }
    // Start, end and clip latents are VAE forwards; everything else accumulates sampler steps.
    const double tol = name == "start_latent" || name == "end_latent" || name == "video_latents"
                           ? kTolForward
                           : kTolSampler;
    results.push_back(compare(c.name(), name, it->second, c.out(name), tol));
  }
}

// A section's context under FramePack's names (sample_hunyuan's arguments).
void record_context(std::map<std::string, at::Tensor>& produced, int section,
                    const sampling::SectionContext& ctx) {
  const std::string prefix = "section" + std::to_string(section) + ".";
  for (const auto& [name, t] :
       {std::make_pair("latent_indices", &ctx.latent_indices),
        std::make_pair("clean_latents", &ctx.clean_latents),
        std::make_pair("clean_latent_indices", &ctx.clean_latent_indices),
        std::make_pair("clean_latents_2x", &ctx.clean_latents_2x),
        std::make_pair("clean_latent_2x_indices", &ctx.clean_latent_indices_2x),
        std::make_pair("clean_latents_4x", &ctx.clean_latents_4x),
        std::make_pair("clean_latent_4x_indices", &ctx.clean_latent_indices_4x)})
    if (t->defined()) produced[prefix + name] = t->clone();
}

// A case's own additions to the loop: inputs it sets, outputs it records, checks it adds.
using LoopSetup =
    std::function<void(pipeline::SectionLoopInputs& in, std::map<std::string, at::Tensor>& produced,
                       std::vector<CaseResult>& results)>;

std::vector<CaseResult> run_loop(const Case& c, pipeline::LoopVariant variant,
                                 const LoopSetup& setup = nullptr) {
  check_sampler(c);
  if (c.has_meta("variant")) {
    const bool f1 = c.meta("variant") == "F1";
    if (f1 != (variant == pipeline::LoopVariant::kF1)) {
      throw Error(c.name() + ": metadata variant \"" + c.meta("variant") +
                  "\" does not match this runner");
    }
  }
  auto transformer = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  const auto vae = load_vae(c.set_dir() + "/vae", at::kFloat, at::kCPU);

  pipeline::SectionLoopInputs in;
  in.start_latent = c.in_optional("start_latent");
  in.start_image = loop_image(c, "start_image");
  in.end_image = loop_image(c, "end_image");
  in.conditioning = conditioning(c);

  const LoopMeta m = loop_meta(c);
  pipeline::SectionLoopParams p;
  p.variant = variant;
  p.num_sections = m.sections;
  p.latent_window_size = m.window;
  p.steps = m.steps;
  p.seed = m.seed;
  p.gs = m.gs;
  p.cfg = m.cfg;
  p.rs = m.rs;
  p.shift = m.shift;
  p.sample_dtype = at::kFloat;
  p.transformer_device = at::kCPU;
  p.end_frame_strength = meta_or(c, "end_frame_strength", 1.0);

  std::vector<CaseResult> results;
  if (variant == pipeline::LoopVariant::kOriginal && c.has_meta("paddings")) {
    const std::vector<int> expected = parse_int_list(c.meta("paddings"));
    if (expected != pipeline::latent_paddings(p.num_sections)) {
      results.push_back(failed(
          c, "paddings", "padding schedule differs from the metadata's " + c.meta("paddings")));
    }
  }

  std::map<std::string, at::Tensor> produced;
  if (setup) setup(in, produced, results);
  pipeline::SectionLoopCallbacks cb;
  // FramePack's reference holds the whole video after every section; the loop hands out only
  // what became final and the tail, so the assembler rebuilds the video the reference saw.
  pipeline::VideoAssembler video;
  cb.on_context = [&](int section, const sampling::SectionContext& ctx) {
    record_context(produced, section, ctx);
  };
  cb.on_section = [&](const pipeline::SectionOutput& out) {
    video.add(out);
    const std::string prefix = "section" + std::to_string(out.section) + ".";
    produced[prefix + "latents"] = out.new_latents.clone();
    produced[prefix + "pixels"] = video.video_so_far();
  };
  const pipeline::SectionLoopResult r = pipeline::run_section_loop(*transformer, *vae, in, p, cb);
  produced["start_latent"] = r.start_latent;
  if (r.end_latent.defined()) produced["end_latent"] = r.end_latent;
  produced["history_latents"] = video.history_latents(variant, r.start_latent);
  produced["pixels"] = video.video_so_far();

  compare_produced(c, produced, results);
  return results;
}

// One sample_hunyuan call with the case's parameters and inputs.
at::Tensor sample_latents(const Case& c, PackedTransformer& transformer) {
  check_sampler(c);
  sampling::SampleHunyuanParams p;
  p.width = c.meta_int("width");
  p.height = c.meta_int("height");
  p.frames = c.meta_int("frames");
  p.real_guidance_scale = meta_or(c, "cfg", 1.0);
  p.distilled_guidance_scale = c.meta_double("gs");
  p.guidance_rescale = meta_or(c, "rs", 0.0);
  p.shift = meta_shift(c);
  p.num_inference_steps = static_cast<int>(c.meta_int("steps"));
  p.latent_channels = transformer.config().in_channels;
  p.dtype = at::kFloat;
  p.device = at::kCPU;

  sampling::SectionContext ctx;
  ctx.latent_indices = c.in_optional("latent_indices");
  ctx.clean_latents = c.in_optional("clean_latents");
  ctx.clean_latent_indices = c.in_optional("clean_latent_indices");
  ctx.clean_latents_2x = c.in_optional("clean_latents_2x");
  ctx.clean_latent_indices_2x = c.in_optional("clean_latent_2x_indices");  // FramePack's names
  ctx.clean_latents_4x = c.in_optional("clean_latents_4x");
  ctx.clean_latent_indices_4x = c.in_optional("clean_latent_4x_indices");

  at::Generator gen =
      at::detail::createCPUGenerator(static_cast<std::uint64_t>(c.meta_int("seed")));
  return sampling::sample_hunyuan(transformer, p, conditioning(c), ctx, gen);
}

// ... compared with out.latents.
std::vector<CaseResult> sample_with(const Case& c, PackedTransformer& transformer) {
  return {
      compare(c.name(), "latents", sample_latents(c, transformer), c.out("latents"), kTolSampler)};
}

std::string as_text(const std::vector<int>& v) {
  std::string t = "[";
  for (std::size_t i = 0; i < v.size(); ++i) t += (i ? ", " : "") + std::to_string(v[i]);
  return t + "]";
}

// A named check that is not a tensor: passed, or failed with what differed.
CaseResult check(const Case& c, const std::string& output, bool ok, const std::string& detail) {
  if (!ok) return failed(c, output, detail);
  CaseResult r;
  r.case_name = c.name();
  r.output = output;
  r.passed = true;
  return r;
}

// The per-call computed (1) / reused (0) sequence, read off the module hook: a call announces
// module 0 first, and a call that runs the blocks announces every block after it. With TeaCache,
// every call also announces transformer_blocks.0 once for its test (which reads its norm1), so
// only a second announcement of it, or a later block, means the blocks ran.
void record_calls(PackedTransformer& transformer, std::vector<int>& calc) {
  int first_block_seen = 0;
  const int first_block = transformer.first_block_module();
  const int end_block = first_block + transformer.num_blocks();
  transformer.before_module = [&calc, first_block_seen, first_block,
                               end_block](int module) mutable {
    if (module == 0) {
      calc.push_back(0);
      first_block_seen = 0;
    }
    if (calc.empty()) return;
    if (module == first_block) ++first_block_seen;
    if (first_block_seen > 1 || (module > first_block && module < end_block)) calc.back() = 1;
  };
}

}  // namespace

std::vector<CaseResult> run_preview_fake(const Case& c) {
  const at::Tensor images = pipeline::vae_decode_fake(c.in("latents"));
  return {compare(c.name(), "images", images, c.out("images"), kTolForward)};
}

std::vector<CaseResult> run_sample(const Case& c) {
  auto transformer = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  return sample_with(c, *transformer);
}

// sample_hunyuan with TeaCache on. Besides the latents, the sequence of computed (1) and reused
// (0) calls must equal the reference's `teacache_calc` exactly.
std::vector<CaseResult> run_sample_teacache(const Case& c) {
  auto transformer = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  transformer->initialize_teacache(true, static_cast<int>(c.meta_int("teacache_num_steps")),
                                   c.meta_double("rel_l1_thresh"));
  std::vector<int> calc;
  record_calls(*transformer, calc);
  std::vector<CaseResult> results = sample_with(c, *transformer);
  const std::vector<int> expected = parse_int_list(c.meta("teacache_calc"));
  results.push_back(
      check(c, "teacache_calc", calc == expected,
            "computed/reused calls " + as_text(calc) + ", reference " + as_text(expected)));
  return results;
}

// sample_hunyuan with FramePack-Studio's MagCache installed (and once without it): the latents
// both ways, the calibrated ratios picked for the case's size and step count, and the sequence of
// computed (1) and skipped (0) calls exactly.
std::vector<CaseResult> run_sample_magcache(const Case& c) {
  auto transformer = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  const std::string family_name = c.meta("model_family");
  if (family_name != "Original" && family_name != "F1")
    return {failed(c, "latents", "unknown MagCache model_family \"" + family_name + "\"")};
  const MagCacheFamily family =
      family_name == "F1" ? MagCacheFamily::kF1 : MagCacheFamily::kOriginal;
  const int steps = static_cast<int>(c.meta_int("steps"));
  const MagCacheRatios table = magcache_ratios(family, static_cast<int>(c.meta_int("height")),
                                               static_cast<int>(c.meta_int("width")), steps);
  MagCacheSettings settings;
  settings.threshold = c.meta_double("magcache_threshold");
  settings.max_consecutive_skips = static_cast<int>(c.meta_int("magcache_max_consecutive_skips"));
  settings.retention_ratio = c.meta_double("magcache_retention_ratio");

  std::vector<CaseResult> results;
  const std::vector<double> expected_ratios = parse_double_list(c, "magcache_mag_ratios");
  bool same = expected_ratios.size() == table.ratios.size();
  for (std::size_t i = 0; same && i < expected_ratios.size(); ++i)
    same = std::abs(expected_ratios[i] - table.ratios[i]) <= 1e-12;
  results.push_back(check(c, "magcache_mag_ratios", same,
                          "the ratios picked differ from the reference's (" + table.description +
                              "; reference: " + c.meta("magcache_ratio_table") + ")"));

  transformer->initialize_magcache(true, table.ratios, steps, settings);
  std::vector<int> calc;
  record_calls(*transformer, calc);
  results.push_back(
      compare(c.name(), "latents", sample_latents(c, *transformer), c.out("latents"), kTolSampler));
  const std::vector<int> expected = parse_int_list(c.meta("magcache_calc"));
  results.push_back(
      check(c, "magcache_calc", calc == expected,
            "computed/skipped calls " + as_text(calc) + ", reference " + as_text(expected)));

  transformer->initialize_magcache(false);
  transformer->before_module = nullptr;
  results.push_back(compare(c.name(), "latents_no_cache", sample_latents(c, *transformer),
                            c.out("latents_no_cache"), kTolSampler));
  return results;
}

std::vector<CaseResult> run_sections(const Case& c) {
  return run_loop(c, pipeline::LoopVariant::kOriginal);
}

std::vector<CaseResult> run_sections_f1(const Case& c) {
  return run_loop(c, pipeline::LoopVariant::kF1);
}

// The conditioning of prompt i of a timed-prompts case (in.prompt<i>_embeds, _mask, _poolers).
sampling::PromptConditioning timed_prompt(const Case& c, std::size_t i) {
  const std::string p = "prompt" + std::to_string(i);
  return {c.in(p + "_embeds"), c.in_optional(p + "_embeds_mask"), c.in(p + "_poolers")};
}

// FramePack-Studio's timed prompts: the case's prompt parsed (spans compared with the
// metadata's), every section conditioned on its prompt or blend, which is recorded.
std::vector<CaseResult> run_sections_timed(const Case& c) {
  const std::string model = c.meta("model_type");
  if (model != "Original" && model != "F1")
    throw Error(c.name() + ": model_type \"" + model + "\" is not a timed-prompt loop here");
  const bool backwards = model == "Original";
  const pipeline::PromptSchedule schedule(
      pipeline::parse_timed_prompt(c.meta("prompt"), c.meta_double("total_second_length"),
                                   static_cast<int>(c.meta_int("window")), backwards),
      static_cast<int>(c.meta_int("blend_sections")));
  std::vector<sampling::PromptConditioning> prompts;
  for (std::size_t i = 0; i < schedule.prompts().size(); ++i) prompts.push_back(timed_prompt(c, i));
  const LoopSetup setup = [&](pipeline::SectionLoopInputs& in,
                              std::map<std::string, at::Tensor>& produced,
                              std::vector<CaseResult>& results) {
    // The parse: the same texts in the same order, times to the metadata's 6 decimals.
    const nlohmann::json expected = nlohmann::json::parse(c.meta("prompt_sections"));
    bool same = expected.is_array() && expected.size() == schedule.spans().size();
    for (std::size_t i = 0; same && i < expected.size(); ++i) {
      const pipeline::PromptSpan& s = schedule.spans()[i];
      same = expected[i].at(0).get<std::string>() == s.prompt &&
             std::abs(expected[i].at(1).get<double>() - s.start_s) < 2e-6 &&
             (expected[i].at(2).is_null()
                  ? !s.end_s
                  : s.end_s && std::abs(expected[i].at(2).get<double>() - *s.end_s) < 2e-6);
    }
    results.push_back(check(
        c, "prompt_sections", same,
        "the timed prompt parses differently from the reference's " + c.meta("prompt_sections")));
    const nlohmann::json texts = nlohmann::json::parse(c.meta("prompts"));
    results.push_back(check(c, "prompts", texts == nlohmann::json(schedule.prompts()),
                            "distinct prompts " + nlohmann::json(schedule.prompts()).dump() +
                                ", reference " + c.meta("prompts")));
    in.conditioning.positive = prompts.front();
    in.section_conditioning = [&](int section, std::int64_t generated) {
      const pipeline::SectionPrompt p = schedule.for_section(section, generated);
      sampling::HunyuanConditioning cond = in.conditioning;
      cond.positive = pipeline::blended_prompt(prompts, p);
      const std::string prefix = "section" + std::to_string(section) + ".";
      produced[prefix + "prompt_embeds"] = cond.positive.embeds;
      produced[prefix + "prompt_embeds_mask"] = cond.positive.mask;
      produced[prefix + "prompt_poolers"] = cond.positive.poolers;
      return cond;
    };
  };
  return run_loop(c, backwards ? pipeline::LoopVariant::kOriginal : pipeline::LoopVariant::kF1,
                  setup);
}

// FramePack-Studio's "Video" / "Video F1" extension of the case's clip: the clip's latents, each
// section's context and latents, the new frames' latents and pixels.
std::vector<CaseResult> run_sections_extend(const Case& c) {
  check_sampler(c);
  const std::string model = c.meta("model_type");
  if (model != "Video" && model != "Video F1")
    throw Error(c.name() + ": model_type \"" + model + "\" is not a video extension here");
  auto transformer = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  const auto vae = load_vae(c.set_dir() + "/vae", at::kFloat, at::kCPU);
  const at::Tensor video = c.in("input_video");  // T x H x W x 3, uint8 values
  const std::int64_t n = pipeline::frames_to_encode(video.size(0));
  const at::Tensor clip = pipeline::vae_pixels(video.narrow(0, video.size(0) - n, n));
  const LoopMeta m = loop_meta(c);
  pipeline::VideoExtendParams p;
  p.direction = model == "Video F1" ? pipeline::ExtendDirection::kForward
                                    : pipeline::ExtendDirection::kBackward;
  p.sections = m.sections;
  p.latent_window = m.window;
  p.steps = m.steps;
  p.seed = m.seed;
  p.gs = m.gs;
  p.cfg = m.cfg;
  p.rs = m.rs;
  p.shift = m.shift;
  p.num_cleaned_frames = static_cast<int>(meta_or(c, "num_cleaned_frames", 5));
  p.sample_dtype = at::kFloat;

  std::vector<CaseResult> results;
  if (c.has_meta("encoded_frames"))
    results.push_back(check(
        c, "encoded_frames", n == c.meta_int("encoded_frames"),
        "encodes " + std::to_string(n) + " frames, the reference " + c.meta("encoded_frames")));
  if (p.direction == pipeline::ExtendDirection::kBackward && c.has_meta("paddings"))
    results.push_back(check(
        c, "paddings", parse_int_list(c.meta("paddings")) == pipeline::video_paddings(p.sections),
        "padding schedule differs from the metadata's " + c.meta("paddings")));
  std::map<std::string, at::Tensor> produced;
  pipeline::VideoExtendCallbacks cb;
  cb.on_context = [&](int section, const sampling::SectionContext& ctx) {
    record_context(produced, section, ctx);
  };
  cb.on_sampled = [&](int section, const at::Tensor& latents) {
    produced["section" + std::to_string(section) + ".latents"] = latents.clone();
  };
  const pipeline::VideoExtendResult r =
      pipeline::extend_video(*transformer, *vae, clip, conditioning(c), p, cb);
  produced["video_latents"] = r.video_latents;
  produced["history_latents"] = r.new_latents;
  produced["pixels"] = r.pixels;
  compare_produced(c, produced, results);
  return results;
}

// FramePack-Studio's "Original with Endframe": the original loop with the case's end image.
std::vector<CaseResult> run_sections_endframe(const Case& c) {
  if (!c.has_in("end_image")) throw Error(c.name() + ": the case has no in.end_image");
  return run_loop(c, pipeline::LoopVariant::kOriginal);
}

}  // namespace framesmith::golden
