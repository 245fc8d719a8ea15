// The conditioning encoders and the start-image preparation against the reference: CLIP text and
// LLaMA (text-tiny-a, from OpenAI's CLIP and Meta's llama3 code), FramePack's buckets and PIL
// Lanczos crops, and the SigLIP preprocessing and vision tower (image-a).
#include <gtest/gtest.h>

#include <cstdio>

#include "golden/golden_encoders.h"
#include "test_support.h"

namespace framesmith::golden {
namespace {

const std::string kText = std::string(FRAMESMITH_GOLDEN_DIR) + "/text-tiny-a";
const std::string kImage = std::string(FRAMESMITH_GOLDEN_DIR) + "/image-a";

using test::expect_all_pass;

TEST(EncodersGolden, ClipTextForward) {
  const auto results = run_clip_text_forward(Case(kText, "clip_text_forward"));
  EXPECT_EQ(results.size(), 2u);  // last_hidden_state, pooler_output
  expect_all_pass(results);
}

TEST(EncodersGolden, LlamaForward) {
  const auto results = run_llama_forward(Case(kText, "llama_forward"));
  EXPECT_GE(results.size(), 2u);  // embeddings, each layer, the final norm
  expect_all_pass(results);
}

TEST(EncodersGolden, ImagePrep) {
  const auto results = run_image_prep(Case(kImage, "image_prep"));
  EXPECT_GE(results.size(), 2u);  // a bucket and a crop per picture
  EXPECT_EQ(results.size() % 2, 0u);
  expect_all_pass(results);
}

TEST(EncodersGolden, SiglipForward) {
  const auto results = run_siglip_forward(Case(kImage, "siglip_forward"));
  EXPECT_GE(results.size(), 2u);  // pixel_values (at each size), last_hidden_state
  expect_all_pass(results);
}

}  // namespace
}  // namespace framesmith::golden
