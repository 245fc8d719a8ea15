// The packed transformer against FramePack's reference forward (tiny random-weight model).
#include <gtest/gtest.h>

#include <cstdio>

#include "golden/golden.h"

namespace framesmith::golden {
namespace {

TEST(TransformerGolden, ForwardMatchesReference) {
  const Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a", "transformer_forward");
  const std::vector<CaseResult> results = run_transformer_forward(c);
  ASSERT_FALSE(results.empty());
  for (const CaseResult& r : results) {
    std::printf("%s/%s: rel-L2 %.3e, max-abs %.3e (tolerance %.0e)%s%s\n", r.case_name.c_str(),
                r.output.c_str(), r.rel_l2, r.max_abs, r.tolerance, r.error.empty() ? "" : ": ",
                r.error.c_str());
    EXPECT_TRUE(r.passed) << r.case_name << "/" << r.output << " rel-L2 " << r.rel_l2;
  }
}

}  // namespace
}  // namespace framesmith::golden
