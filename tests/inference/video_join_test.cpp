// A video job's loop on the tiny model: the clip joined to the new frames (its frames before the
// seam untouched, the seam starting on the clip's own frame, the rest the same as the reference
// loop's), the frame count and hand-out indices, and a resume from saved sections giving the
// uninterrupted video. The reference loop itself (no join) is checked by the golden case.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/section_loop.h"
#include "pipeline/video_extend.h"
#include "support/section_loop_inputs.h"

using namespace framesmith;

namespace {

const std::string kModelSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";
constexpr std::int64_t kClipFrames = 20, kWindow = 2;
constexpr int kSections = 3;

struct Made {
  at::Tensor video;
  std::vector<at::Tensor> latents;   // generation order
  std::vector<std::int64_t> firsts;  // each chunk's first final frame
  std::int64_t total_frames = 0;
};

class VideoJoin : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    transformer_ = load_transformer(kModelSet + "/transformer", at::kFloat, at::kCPU);
    vae_ = load_vae(kModelSet + "/vae", at::kFloat, at::kCPU);
    at::manual_seed(5);
    clip_ = at::rand({1, 3, kClipFrames, 32, 48}) * 2 - 1;
    latents_ = pipeline::encode_video_latents(*vae_, clip_.narrow(2, kClipFrames - 16, 16));
  }
  static void TearDownTestSuite() {
    transformer_.reset();
    vae_.reset();
  }

  static Made run(pipeline::LoopVariant v, bool join,
                  pipeline::ResumedSections resume = pipeline::ResumedSections()) {
    pipeline::SectionLoopInputs in =
        test_support::random_section_loop_inputs(transformer_->config(), 11, 32, 48);
    in.start_image = at::Tensor();
    in.video.latents = latents_;
    if (join) {
      in.video.clip_pixels = clip_;
      in.video.clip_frames = kClipFrames;
    }
    in.resume_sections = std::move(resume);
    pipeline::SectionLoopParams p;
    p.variant = v;
    p.num_sections = kSections;
    p.latent_window_size = int(kWindow);
    p.steps = 1;
    p.seed = 3;
    p.sample_dtype = at::kFloat;
    Made m;
    pipeline::VideoAssembler video;
    pipeline::SectionLoopCallbacks cb;
    cb.on_section = [&](const pipeline::SectionOutput& out) {
      video.add(out);
      m.latents.push_back(out.new_latents);
      if (out.final_pixels.size(2) > 0) m.firsts.push_back(out.first_final_frame);
    };
    m.total_frames = pipeline::run_section_loop(*transformer_, *vae_, in, p, cb).total_frames;
    m.video = video.video_so_far();
    return m;
  }

  static inline std::shared_ptr<PackedTransformer> transformer_;
  static inline std::shared_ptr<Vae> vae_;
  static inline at::Tensor clip_, latents_;
};

TEST_F(VideoJoin, ClipThenNewFramesWithTheSeamOnTheClipsOwnFrames) {
  for (pipeline::LoopVariant v : {pipeline::LoopVariant::kF1, pipeline::LoopVariant::kOriginal}) {
    SCOPED_TRACE(v == pipeline::LoopVariant::kF1 ? "forward" : "backward");
    const Made joined = run(v, true), alone = run(v, false);
    // 4 frames per new latent; without the clip the first new latent decodes to one frame.
    EXPECT_EQ(joined.total_frames, kClipFrames + 4 * kWindow * kSections);
    EXPECT_EQ(alone.total_frames, 4 * kWindow * kSections - 3);
    ASSERT_EQ(joined.video.size(2), joined.total_frames);
    ASSERT_EQ(alone.video.size(2), alone.total_frames);
    // The seam blends the frames of the clip's last 2 latents (5); the 15 before are the clip's.
    const std::int64_t seam = 5, before = kClipFrames - seam;
    EXPECT_TRUE(joined.video.narrow(2, 0, before).equal(clip_.narrow(2, 0, before)));
    // The blend starts on the clip's own frame (weight 1) and leaves it within one step.
    EXPECT_TRUE(
        at::allclose(joined.video.narrow(2, before, 1), clip_.narrow(2, before, 1), 1e-5, 1e-5));
    // The sampling does not depend on the join: the same latents, and the frames no seam
    // reaches (the last section's own, 4 per latent) are the reference loop's.
    for (std::size_t i = 0; i < joined.latents.size(); ++i)
      EXPECT_TRUE(joined.latents[i].equal(alone.latents[i])) << "section " << i;
    const std::int64_t tail = 4 * kWindow;
    EXPECT_TRUE(joined.video.narrow(2, joined.video.size(2) - tail, tail)
                    .equal(alone.video.narrow(2, alone.video.size(2) - tail, tail)));
    // The chunks were handed out at their place: sorted, they start at the clip's first frame.
    std::vector<std::int64_t> firsts = joined.firsts;
    std::sort(firsts.begin(), firsts.end());
    EXPECT_EQ(firsts.front(), 0);
  }
}

TEST_F(VideoJoin, ResumedFromSavedSectionsGivesTheSameVideo) {
  for (pipeline::LoopVariant v : {pipeline::LoopVariant::kF1, pipeline::LoopVariant::kOriginal}) {
    SCOPED_TRACE(v == pipeline::LoopVariant::kF1 ? "forward" : "backward");
    const Made whole = run(v, true);
    const Made resumed =
        run(v, true, pipeline::ResumedSections::of({whole.latents[0], whole.latents[1]}));
    EXPECT_TRUE(resumed.video.equal(whole.video));
    EXPECT_TRUE(resumed.latents[2].equal(whole.latents[2]));
  }
}

TEST_F(VideoJoin, BadClipInputsAreRefused) {
  pipeline::SectionLoopInputs in =
      test_support::random_section_loop_inputs(transformer_->config(), 11, 32, 48);
  pipeline::SectionLoopParams p;
  p.num_sections = 1;
  p.latent_window_size = 2;
  p.steps = 1;
  p.sample_dtype = at::kFloat;
  in.video.latents = latents_;
  in.video.clip_pixels = at::zeros({1, 3, 4, 16, 16});  // not the latents' size
  in.video.clip_frames = 4;
  EXPECT_THROW(pipeline::run_section_loop(*transformer_, *vae_, in, p), Error);
  in.video.clip_pixels = clip_;
  in.video.clip_frames = 3;  // fewer than the pixels given
  EXPECT_THROW(pipeline::run_section_loop(*transformer_, *vae_, in, p), Error);
  in.video.clip_frames = kClipFrames;
  in.end_latent = latents_.narrow(2, 0, 1);
  EXPECT_THROW(pipeline::run_section_loop(*transformer_, *vae_, in, p), Error);
}

}  // namespace
