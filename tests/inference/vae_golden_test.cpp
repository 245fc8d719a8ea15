// The HunyuanVideo VAE against diffusers 0.33.1 (tiny random-weight model): decode in all three
// modes, encode whole and spatially tiled.
#include <gtest/gtest.h>

#include <cstdio>

#include "golden/golden.h"
#include "test_support.h"

namespace framesmith::golden {
namespace {

const std::string kSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";

using test::expect_all_pass;

TEST(VaeGolden, DecodeMatchesReference) {
  const std::vector<CaseResult> results = run_vae_decode(Case(kSet, "vae_decode"));
  EXPECT_EQ(results.size(), 3u);  // pixels, pixels_whole, pixels_tiled
  expect_all_pass(results);
}

TEST(VaeGolden, EncodeMatchesReference) {
  const std::vector<CaseResult> results = run_vae_encode(Case(kSet, "vae_encode"));
  EXPECT_EQ(results.size(), 4u);  // mean, std, latent_mode_scaled, mean_tiled
  expect_all_pass(results);
}

}  // namespace
}  // namespace framesmith::golden
