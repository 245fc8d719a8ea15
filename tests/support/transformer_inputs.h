// Random inputs of one packed-transformer forward for the engine's transformer tests: 2 latent
// frames of 4 x 6, 10 text tokens (6 unmasked), 3 image tokens, clean latents at 1x, 2x and 4x
// (`frames_4x` of them at 4x: 5 is ragged, replicate-padded to 8), from seed 3.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "models/transformer_packed.h"

namespace framesmith::test_support {

inline TransformerInputs random_transformer_inputs(const TransformerConfig& cfg,
                                                   std::int64_t frames_4x) {
  at::manual_seed(3);
  TransformerInputs in;
  in.hidden_states = at::randn({1, 16, 2, 4, 6});
  in.timestep = at::full({1}, 500.0);
  in.encoder_hidden_states = at::randn({1, 10, cfg.text_embed_dim});
  in.encoder_attention_mask = at::arange(10).lt(6).unsqueeze(0);
  in.pooled_projections = at::randn({1, cfg.pooled_projection_dim});
  in.guidance = at::full({1}, 10000.0);
  in.latent_indices = at::arange(3, 5).unsqueeze(0);
  in.clean_latents = at::randn({1, 16, 2, 4, 6});
  in.clean_latent_indices = at::tensor({0, 5}, at::kLong).unsqueeze(0);
  in.clean_latents_2x = at::randn({1, 16, 2, 4, 6});
  in.clean_latent_indices_2x = at::arange(6, 8).unsqueeze(0);
  in.clean_latents_4x = at::randn({1, 16, frames_4x, 4, 6});
  in.clean_latent_indices_4x = at::arange(8, 8 + frames_4x).unsqueeze(0);
  in.image_embeddings = at::randn({1, 3, cfg.image_proj_dim});
  return in;
}

}  // namespace framesmith::test_support
