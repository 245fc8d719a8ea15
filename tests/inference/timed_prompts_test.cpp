// Timestamped prompts: FramePack-Studio's parse (snapping, mirroring for the original loop), the
// per-section choice and blending, and the problems refused before a job starts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pipeline/timed_prompts.h"

namespace framesmith::pipeline {
namespace {

constexpr double kSection = 5.0 / 30.0;  // window 2: (2 * 4 - 3) / 30 s

TEST(TimedPrompts, PlainTextIsOneSpan) {
  EXPECT_FALSE(has_timestamps("a cat sits"));
  const auto spans = parse_timed_prompt("  a cat sits ", 5, 9, true);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].prompt, "a cat sits");
  EXPECT_FALSE(spans[0].end_s.has_value());
}

TEST(TimedPrompts, SnappedToSectionsForwardAndMirroredBackward) {
  const std::string text = "[0s: a red fox runs] [0.3s: the fox jumps] [0.6s: the fox sleeps]";
  const auto f1 = parse_timed_prompt(text, 0.8, 2, false);
  ASSERT_EQ(f1.size(), 3u);
  EXPECT_EQ(f1[1].prompt, "the fox jumps");
  EXPECT_NEAR(f1[1].start_s, 2 * kSection, 1e-12);  // 0.3 / (1/6) = 1.8 -> 2
  EXPECT_NEAR(*f1[1].end_s, 4 * kSection, 1e-12);
  EXPECT_NEAR(*f1[2].end_s, 5 * kSection, 1e-12);  // the video's end, 0.8 s -> 4.8 -> 5
  // The original loop makes the video from its end: t -> 0.8 - t, sorted again.
  const auto orig = parse_timed_prompt(text, 0.8, 2, true);
  ASSERT_EQ(orig.size(), 3u);
  EXPECT_EQ(orig[0].prompt, "the fox sleeps");
  EXPECT_NEAR(orig[0].start_s, 0.8 - 5 * kSection, 1e-12);  // may start before 0
  EXPECT_NEAR(*orig[0].end_s, 0.8 - 4 * kSection, 1e-12);
  EXPECT_EQ(orig[2].prompt, "a red fox runs");
}

TEST(TimedPrompts, RangesUnsortedAndTextOutsideBrackets) {
  const auto spans = parse_timed_prompt("[2s: b] a default [0s-1s: a]", 4, 9, false);
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].prompt, "a");  // sorted by start; the default also starts at 0, after it
  EXPECT_EQ(spans[1].prompt, "a default");
  EXPECT_EQ(spans[2].prompt, "b");
  // Window 9: sections of 1.1 s. a ends at 1 s -> 1.1; the default runs to b's start (2 -> 2.2).
  EXPECT_NEAR(*spans[0].end_s, 1.1, 1e-12);
  EXPECT_NEAR(*spans[1].end_s, 2.2, 1e-12);
  EXPECT_NEAR(spans[2].start_s, 2.2, 1e-12);
  EXPECT_NEAR(*spans[2].end_s, 4.4, 1e-12);  // the video's 4 s -> 4.4
}

TEST(TimedPrompts, ProblemsAreNamed) {
  EXPECT_TRUE(timed_prompt_problems("[0s: a] [2s: b]", 5).empty());
  EXPECT_TRUE(timed_prompt_problems("[2s: b] [0s: a]", 5).empty());  // sorted, fine
  const auto past = timed_prompt_problems("[0s: a] [6s: b]", 5);
  ASSERT_EQ(past.size(), 1u);
  EXPECT_NE(past[0].find("past the video's end"), std::string::npos) << past[0];
  const auto overlap = timed_prompt_problems("[0s-3s: a] [2s: b]", 5);
  ASSERT_EQ(overlap.size(), 1u);
  EXPECT_NE(overlap[0].find("overlaps"), std::string::npos) << overlap[0];
  EXPECT_EQ(timed_prompt_problems("[0s: a] [0s: b]", 5).size(), 1u);
  EXPECT_EQ(timed_prompt_problems("[3s-1s: a]", 5).size(), 1u);
  EXPECT_EQ(timed_prompt_problems("[1s: ]", 5).size(), 1u);
  // Brackets without a time are part of the prompt, as in FramePack-Studio.
  EXPECT_TRUE(timed_prompt_problems("a cat [smiling]", 5).empty());
  EXPECT_FALSE(has_timestamps("a cat [smiling]"));
  ASSERT_EQ(parse_timed_prompt("a cat [smiling]", 5, 9, true).size(), 1u);
  EXPECT_EQ(parse_timed_prompt("a cat [smiling]", 5, 9, true)[0].prompt, "a cat [smiling]");
}

TEST(TimedPrompts, SectionChoiceAndBlendFollowFramePackStudio) {
  // The F1 case of modes-tiny-a: 3 sections of 2 latents, F1 counts its start latent.
  const PromptSchedule s(parse_timed_prompt("[0s: a] [0.3s: b] [0.6s: c]", 0.8, 2, false),
                         /*blend_sections=*/2);
  ASSERT_EQ(s.prompts(), (std::vector<std::string>{"a", "b", "c"}));
  const SectionPrompt p0 = s.for_section(0, 1);
  EXPECT_FALSE(p0.blended());
  EXPECT_EQ(p0.first, 0);
  // Section 1 is at the position of the change to "b" in the span list: blended, 1/2.
  const SectionPrompt p1 = s.for_section(1, 3);
  EXPECT_TRUE(p1.blended());
  EXPECT_EQ(p1.first, 0);
  EXPECT_EQ(p1.second, 1);
  EXPECT_DOUBLE_EQ(p1.weight, 0.5);
  const SectionPrompt p2 = s.for_section(2, 5);
  EXPECT_EQ(p2.first, 1);
  EXPECT_EQ(p2.second, 2);
  // Past the last change: the prompt that holds at the section's time, unblended.
  const SectionPrompt p3 = s.for_section(3, 9);  // (9 * 4 - 3) / 30 = 1.1 s: past every span
  EXPECT_FALSE(p3.blended());
  EXPECT_EQ(p3.first, 0);  // none holds: the first span's, as FramePack-Studio defaults
  // Without blending, only the time decides.
  const PromptSchedule plain(parse_timed_prompt("[0s: a] [0.3s: b]", 0.8, 2, false), 0);
  EXPECT_EQ(plain.for_section(1, 3).first, 0);  // 0.3 s: still a's [0, 1/3 s)
  EXPECT_EQ(plain.for_section(2, 5).first, 1);  // 0.57 s: b's
  EXPECT_FALSE(plain.for_section(1, 3).blended());
}

}  // namespace
}  // namespace framesmith::pipeline
