// Golden check of one packed-transformer forward with every kind of context.
#include "golden/golden_transformer.h"

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

}  // namespace framesmith::golden
