// Section-loop inputs for the engine's loop tests: random conditioning of the widths the
// transformer's config asks for (7 text tokens, 5 image tokens; the negative prompt zero, as
// FramePack's empty prompt with CFG 1) and a random start image of the given size, from `seed`.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "models/transformer_packed.h"
#include "pipeline/section_loop.h"

namespace framesmith::test_support {

inline pipeline::SectionLoopInputs random_section_loop_inputs(const TransformerConfig& c,
                                                              std::uint64_t seed,
                                                              std::int64_t height,
                                                              std::int64_t width) {
  at::manual_seed(seed);
  pipeline::SectionLoopInputs in;
  in.conditioning.positive.embeds = at::randn({1, 7, c.text_embed_dim});
  in.conditioning.positive.mask = at::ones({1, 7}, at::kLong);
  in.conditioning.positive.poolers = at::randn({1, c.pooled_projection_dim});
  in.conditioning.negative.embeds = at::zeros({1, 7, c.text_embed_dim});
  in.conditioning.negative.mask = at::zeros({1, 7}, at::kLong);
  in.conditioning.negative.poolers = at::zeros({1, c.pooled_projection_dim});
  in.conditioning.image_embeddings = at::randn({1, 5, c.image_proj_dim});
  in.start_image = at::rand({1, 3, 1, height, width}) * 2 - 1;
  return in;
}

}  // namespace framesmith::test_support
