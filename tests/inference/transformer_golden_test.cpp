// The packed transformer against FramePack's reference forward (tiny random-weight model).
#include <gtest/gtest.h>

#include <cstdio>

#include "golden/golden.h"
#include "test_support.h"

namespace framesmith::golden {
namespace {

TEST(TransformerGolden, ForwardMatchesReference) {
  const Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a", "transformer_forward");
  const std::vector<CaseResult> results = run_transformer_forward(c);
  test::expect_all_pass(results);
}

}  // namespace
}  // namespace framesmith::golden
