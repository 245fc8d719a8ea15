// Golden check of one packed-transformer forward with every kind of context.
#include "golden/golden_transformer.h"

#include <nlohmann/json.hpp>

#include "framesmith/error.h"

namespace framesmith::golden {
TransformerInputs transformer_case_inputs(const Case& c) {
  TransformerInputs in;
  in.hidden_states = c.in("hidden_states");
  in.timestep = c.in("timestep");
  in.encoder_hidden_states = c.in("encoder_hidden_states");
  in.encoder_attention_mask = c.in_optional("encoder_attention_mask");
  in.pooled_projections = c.in("pooled_projections");
  in.guidance = c.in_optional("guidance");
  in.latent_indices = c.in_optional("latent_indices");
  in.clean_latents = c.in_optional("clean_latents");
  in.clean_latent_indices = c.in_optional("clean_latent_indices");
  in.clean_latents_2x = c.in_optional("clean_latents_2x");
  in.clean_latent_indices_2x = c.in_optional("clean_latent_2x_indices");  // FramePack's names
  in.clean_latents_4x = c.in_optional("clean_latents_4x");
  in.clean_latent_indices_4x = c.in_optional("clean_latent_4x_indices");
  in.image_embeddings = c.in_optional("image_embeddings");
  return in;
}

std::vector<CaseResult> run_transformer_forward(const Case& c) {
  auto model = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  const at::Tensor out = model->forward(transformer_case_inputs(c));
  return {compare(c.name(), "sample", out, c.out("sample"), kTolForward)};
}

// lora_forward: the case's transformer with each run's LoRA files (the set's loras/ folder)
// applied as the run's loader applies them, one forward each. A run with a check is compared with
// what the check names: "zero" the base output, bit for bit; "same_as:R" run R's stored output.
std::vector<CaseResult> run_lora_forward(const Case& c) {
  const std::string folder = c.set_dir() + "/transformer";
  const TransformerInputs in = transformer_case_inputs(c);
  const at::Tensor base = load_transformer(folder, at::kFloat, at::kCPU)->forward(in);
  std::vector<CaseResult> results = {
      compare(c.name(), "base.sample", base, c.out("base.sample"), kTolForward)};
  const nlohmann::json runs = nlohmann::json::parse(c.meta("runs"));
  if (!runs.is_object() || runs.empty())
    throw Error(c.name() + ": metadata \"runs\" names no runs");
  for (const auto& [run, spec] : runs.items()) {
    TransformerLoras loras;
    const std::string loader = spec.at("loader").get<std::string>();
    if (loader != "lora_ready" && loader != "diffusers")
      throw Error(c.name() + ": run " + run + " uses loader \"" + loader + "\", unknown here");
    // FramePack-Studio's diffusers loader (PEFT, network_alphas=None) ignores kohya alphas.
    loras.options.use_alpha = loader == "lora_ready";
    for (const auto& entry : spec.at("loras"))
      loras.files.push_back(
          {c.set_dir() + "/loras/" + entry.at(0).get<std::string>() + ".safetensors",
           entry.at(1).get<double>()});
    const at::Tensor out =
        load_transformer(folder, at::kFloat, at::kCPU, Conversion::kAtLoad, loras)->forward(in);
    // What a run is compared with: its stored output; else the run it must equal
    // ("rel_l2_vs_<run>", or cases.json's "same_as:<run>"); else the base, bit for bit
    // ("equals_base", or "zero").
    std::string same_as = spec.value("check", "");
    same_as = same_as.rfind("same_as:", 0) == 0 ? same_as.substr(8) : "";
    for (const auto& [key, _] : spec.items())
      if (key.rfind("rel_l2_vs_", 0) == 0 && key != "rel_l2_vs_base") same_as = key.substr(10);
    if (c.has_out(run + ".sample")) {
      results.push_back(
          compare(c.name(), run + ".sample", out, c.out(run + ".sample"), kTolForward));
    } else if (!same_as.empty()) {
      results.push_back(compare(c.name(), run + ".sample (= " + same_as + ")", out,
                                c.out(same_as + ".sample"), kTolForward));
    } else if (spec.value("equals_base", false) || spec.value("check", "") == "zero") {
      results.push_back(compare(c.name(), run + ".sample (= base, bitwise)", out, base, 0.0));
    } else {
      throw Error(c.name() + ": run " + run + " has no stored output and nothing to equal");
    }
  }
  return results;
}

}  // namespace framesmith::golden
