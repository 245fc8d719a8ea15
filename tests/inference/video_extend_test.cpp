// Video extension's schedule: how much of a clip is encoded, the backward mode's paddings, and
// the context shapes at the edges (a clip of one or two latents) that FramePack-Studio pads.
#include <gtest/gtest.h>

#include <vector>

#include "pipeline/video_extend.h"

namespace framesmith::pipeline {
namespace {

TEST(VideoExtend, FramesToEncodeAndPaddings) {
  EXPECT_EQ(frames_to_encode(17), 16);    // a multiple of 4 from the end
  EXPECT_EQ(frames_to_encode(200), 108);  // 27 latents: the most any context reads
  EXPECT_EQ(frames_to_encode(3), 0);      // too short to extend
  EXPECT_EQ(video_paddings(2), (std::vector<int>{1, 0}));
  EXPECT_EQ(video_paddings(4), (std::vector<int>{3, 2, 1, 0}));
  EXPECT_EQ(video_paddings(6), (std::vector<int>{3, 2, 2, 2, 1, 0}));
}

TEST(VideoExtend, ContextShapesAtTheEdges) {
  const at::Tensor video = at::randn({1, 16, 4, 2, 2});
  // Backward, first section (next to the clip's end): 4 clean latents before, 4 zero ones after.
  sampling::SectionContext c = video_context(video, video, 2, 1, 1, 5);
  EXPECT_EQ(c.clean_latents.size(2), 8);
  EXPECT_TRUE(c.clean_latents.narrow(2, 4, 4).eq(0).all().item<bool>());
  EXPECT_TRUE(c.clean_latents.narrow(2, 0, 4).equal(video));
  EXPECT_EQ(c.latent_indices.size(1), 2);
  // A one-latent clip forward: the 2x and 4x context are padded to two frames.
  const at::Tensor one = at::randn({1, 16, 1, 2, 2});
  c = video_f1_context(one, one, 2, 5);
  EXPECT_EQ(c.clean_latents_2x.size(2), 2);
  EXPECT_EQ(c.clean_latents_4x.size(2), 2);
  EXPECT_EQ(c.clean_latents.size(2), 2);   // the start latent and the fallback's first
  EXPECT_EQ(c.latent_indices.size(1), 1);  // at most the pixels the clip has: 4 -> 1 latent
}

}  // namespace
}  // namespace framesmith::pipeline
