// Tokenizers against the reference ids of the text case set: CLIP (OpenAI's simple_tokenizer)
// and LLaMA-3 (Hugging Face's implementation of tokenizer.json). Ids must be exactly equal.
#include <gtest/gtest.h>

#include "golden/golden_text.h"

using namespace framesmith::golden;

namespace {

const std::string kSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/text-tiny-a";

void expect_all_passed(const std::vector<CaseResult>& results) {
  ASSERT_FALSE(results.empty());
  for (const CaseResult& r : results) {
    EXPECT_TRUE(r.passed) << r.case_name << " " << r.output << ": " << r.error;
    EXPECT_EQ(r.rel_l2, 0.0) << r.output;
  }
}

}  // namespace

TEST(TokenizerGolden, ClipTokenize) {
  const Case c(kSet, "clip_tokenize");
  const auto results = run_clip_tokenize(c);
  EXPECT_EQ(results.size(), 5u);  // one per prompt
  expect_all_passed(results);
}

TEST(TokenizerGolden, LlamaTokenize) {
  const auto results = run_llama_tokenize(kSet);
  EXPECT_EQ(results.size(), 12u);  // one per case of llama_tokenize.json
  expect_all_passed(results);
}

TEST(TokenizerGolden, CompareIdsReportsFirstMismatch) {
  const CaseResult same = compare_ids("c", "o", {1, 2, 3}, {1, 2, 3});
  EXPECT_TRUE(same.passed);
  EXPECT_TRUE(same.error.empty());
  const CaseResult diff = compare_ids("c", "o", {1, 5, 3, 4}, {1, 2, 3});
  EXPECT_FALSE(diff.passed);
  EXPECT_DOUBLE_EQ(diff.rel_l2, 0.5);  // position 1 differs, position 3 is extra
  EXPECT_DOUBLE_EQ(diff.max_abs, 3.0);
  EXPECT_NE(diff.error.find("position 1: got 5, expected 2"), std::string::npos) << diff.error;
}
