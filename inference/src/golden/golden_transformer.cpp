// Golden check of one packed-transformer forward with every kind of context.
#include "golden/golden.h"
#include "models/transformer_packed.h"

namespace framesmith::golden {
namespace {

// The case file's name for an input, or an undefined tensor where the case leaves it out.
at::Tensor optional_in(const Case& c, const std::string& name) {
  return c.has_in(name) ? c.in(name) : at::Tensor();
}

}  // namespace

std::vector<CaseResult> run_transformer_forward(const Case& c) {
  auto model = load_transformer(c.set_dir() + "/transformer", at::kFloat, at::kCPU);
  TransformerInputs in;
  in.hidden_states = c.in("hidden_states");
  in.timestep = c.in("timestep");
  in.encoder_hidden_states = c.in("encoder_hidden_states");
  in.encoder_attention_mask = optional_in(c, "encoder_attention_mask");
  in.pooled_projections = c.in("pooled_projections");
  in.guidance = optional_in(c, "guidance");
  in.latent_indices = optional_in(c, "latent_indices");
  in.clean_latents = optional_in(c, "clean_latents");
  in.clean_latent_indices = optional_in(c, "clean_latent_indices");
  in.clean_latents_2x = optional_in(c, "clean_latents_2x");
  in.clean_latent_indices_2x = optional_in(c, "clean_latent_2x_indices");  // FramePack's names
  in.clean_latents_4x = optional_in(c, "clean_latents_4x");
  in.clean_latent_indices_4x = optional_in(c, "clean_latent_4x_indices");
  in.image_embeddings = optional_in(c, "image_embeddings");
  const at::Tensor out = model->forward(in);
  return {compare(c.name(), "sample", out, c.out("sample"), kTolForward)};
}

}  // namespace framesmith::golden
