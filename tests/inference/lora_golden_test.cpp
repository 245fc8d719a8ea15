// LoRA files in the three key layouts, applied as FramePack-Studio's two loaders apply them
// (fpstudio-tiny-a's lora_forward: every run, stacked and negative strengths, strength 0 bitwise).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "golden/golden.h"
#include "test_support.h"

namespace framesmith {
namespace {

TEST(LoraGolden, EveryRunOfTheCaseMatchesTheReference) {
  const golden::Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/fpstudio-tiny-a", "lora_forward");
  const std::vector<golden::CaseResult> results = golden::run_lora_forward(c);
  // base + the 11 runs of the case's metadata (9 stored outputs, one same_as, two zero checks).
  EXPECT_EQ(results.size(), 12u);
  test::expect_all_pass(results);
}

}  // namespace
}  // namespace framesmith
