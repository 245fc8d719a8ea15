// The HunyuanVideo VAE against diffusers 0.33.1 (tiny random-weight model): decode in all three
// modes, encode whole and spatially tiled.
#include <gtest/gtest.h>

#include <cstdio>

#include "golden/golden.h"

namespace framesmith::golden {
namespace {

const std::string kSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";

void expect_all_pass(const std::vector<CaseResult>& results) {
  ASSERT_FALSE(results.empty());
  for (const CaseResult& r : results) {
    std::printf("%s/%s: rel-L2 %.3e, max-abs %.3e (tolerance %.0e)%s%s\n", r.case_name.c_str(),
                r.output.c_str(), r.rel_l2, r.max_abs, r.tolerance, r.error.empty() ? "" : ": ",
                r.error.c_str());
    EXPECT_TRUE(r.passed) << r.case_name << "/" << r.output << " rel-L2 " << r.rel_l2 << " "
                          << r.error;
  }
}

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
