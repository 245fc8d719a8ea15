// Golden checks of the sampler and the section loops against FramePack's reference outputs
// (shared/golden/README.md): preview_fake, sample_cfg1, sample_cfg, sections, sections_f1, and
// FramePack-Studio's sample_magcache.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "golden/golden.h"
#include "test_support.h"

namespace golden = framesmith::golden;

namespace {

// FRAMESMITH_SAMPLING_GOLDEN_SET=<folder> runs the same checks on another case set.
std::string case_set() {
  const char* env = std::getenv("FRAMESMITH_SAMPLING_GOLDEN_SET");
  return env != nullptr && *env != '\0' ? std::string(env)
                                        : std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";
}

void check(const std::string& name,
           std::vector<golden::CaseResult> (*runner)(const golden::Case&)) {
  const golden::Case c(case_set(), name);
  const std::vector<golden::CaseResult> results = runner(c);
  ASSERT_FALSE(results.empty()) << name;
  framesmith::test::expect_all_pass(results);
}

}  // namespace

TEST(SamplingGolden, PreviewFake) {
  check("preview_fake", golden::run_preview_fake);
}
TEST(SamplingGolden, SampleCfg1) {
  check("sample_cfg1", golden::run_sample);
}
TEST(SamplingGolden, SampleCfg) {
  check("sample_cfg", golden::run_sample);
}
TEST(SamplingGolden, Sections) {
  check("sections", golden::run_sections);
}
TEST(SamplingGolden, SectionsF1) {
  check("sections_f1", golden::run_sections_f1);
}

// FramePack-Studio's generation modes (modes-tiny-a), run by its own worker: the end frame and
// timed prompts with blending on both loops.
TEST(SamplingGolden, SectionsEndFrame) {
  const golden::Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/modes-tiny-a", "sections_endframe");
  const std::vector<golden::CaseResult> results = golden::run_sections_endframe(c);
  ASSERT_GE(results.size(), 17u);  // end and start latents, each section's context, the pixels
  framesmith::test::expect_all_pass(results);
}

TEST(SamplingGolden, SectionsTimedPrompts) {
  for (const char* name : {"sections_timed", "sections_timed_f1"}) {
    SCOPED_TRACE(name);
    const golden::Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/modes-tiny-a", name);
    const std::vector<golden::CaseResult> results = golden::run_sections_timed(c);
    int prompts_checked = 0;
    for (const golden::CaseResult& r : results)
      prompts_checked += r.output.find(".prompt_") != std::string::npos;
    EXPECT_EQ(prompts_checked, 9);  // embeds, mask and poolers of each of the 3 sections
    framesmith::test::expect_all_pass(results);
  }
}

// Its "Video" and "Video F1" extension of a 17-frame clip: the clip's latents, every section's
// context (their lengths differ by section and direction) and latents, the new pixels.
TEST(SamplingGolden, SectionsVideoExtension) {
  for (const char* name : {"sections_extend", "sections_extend_f1"}) {
    SCOPED_TRACE(name);
    const golden::Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/modes-tiny-a", name);
    const std::vector<golden::CaseResult> results = golden::run_sections_extend(c);
    EXPECT_GE(results.size(), 18u);
    framesmith::test::expect_all_pass(results);
  }
}

// FramePack-Studio's MagCache (fpstudio-tiny-a): the ratios it picks, the computed/skipped call
// sequence, and the latents with and without it.
TEST(SamplingGolden, SampleMagCache) {
  const golden::Case c(std::string(FRAMESMITH_GOLDEN_DIR) + "/fpstudio-tiny-a", "sample_magcache");
  const std::vector<golden::CaseResult> results = golden::run_sample_magcache(c);
  ASSERT_EQ(results.size(), 4u);
  framesmith::test::expect_all_pass(results);
}
