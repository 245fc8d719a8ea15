// The section loops hand out each section's final frames and the tail instead of the whole video
// so far: put together, the chunks are bit for bit the video of FramePack's whole-history
// blending (restated here as the reference: every section decoded and soft-appended onto the
// whole video), and what the loop holds does not grow with the number of sections.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/section_loop.h"
#include "pipeline/section_schedule.h"
#include "support/section_loop_inputs.h"

using namespace framesmith;

namespace {

const std::string kModelSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";

struct LoopRun {
  pipeline::SectionLoopResult result;
  std::vector<pipeline::SectionOutput> sections;
  at::Tensor video;
};

class StreamedVideo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    transformer_ = load_transformer(kModelSet + "/transformer", at::kFloat, at::kCPU);
    vae_ = load_vae(kModelSet + "/vae", at::kFloat, at::kCPU);
  }
  static void TearDownTestSuite() {
    transformer_.reset();
    vae_.reset();
  }

  static pipeline::SectionLoopInputs inputs() {
    return framesmith::test_support::random_section_loop_inputs(transformer_->config(), 11, 32, 48);
  }

  static pipeline::SectionLoopParams params(pipeline::LoopVariant v, int sections) {
    pipeline::SectionLoopParams p;
    p.variant = v;
    p.num_sections = sections;
    p.latent_window_size = 2;
    p.steps = 1;
    p.seed = 77;
    p.sample_dtype = at::kFloat;
    return p;
  }

  static LoopRun run(pipeline::LoopVariant v, int sections) {
    LoopRun r;
    pipeline::VideoAssembler video;
    pipeline::SectionLoopCallbacks cb;
    cb.on_section = [&](const pipeline::SectionOutput& out) {
      video.add(out);
      pipeline::SectionOutput kept = out;
      kept.final_pixels = out.final_pixels.clone();
      r.sections.push_back(kept);
    };
    r.result = pipeline::run_section_loop(*transformer_, *vae_, inputs(), params(v, sections), cb);
    r.video = video.video_so_far();
    return r;
  }

  // The whole-history path the loop replaced: the full latent history kept, every section's
  // decode soft-appended onto the whole video so far.
  static at::Tensor whole_history_video(const LoopRun& r, pipeline::LoopVariant v) {
    const std::int64_t window = 2, overlap = window * 4 - 3;
    const VaeTiling tiling;
    at::Tensor history, pixels;
    if (v == pipeline::LoopVariant::kF1) history = r.result.start_latent;
    for (std::size_t s = 0; s < r.sections.size(); ++s) {
      const at::Tensor& latents = r.sections[s].new_latents;
      const bool last = s + 1 == r.sections.size();
      if (v == pipeline::LoopVariant::kOriginal) {
        history = history.defined() ? at::cat({latents, history}, 2) : latents;
        const std::int64_t n = last ? window * 2 + 1 : window * 2;
        if (!pixels.defined()) {
          pixels = pipeline::decode_latents(*vae_, history, tiling);
        } else {
          const at::Tensor current =
              pipeline::decode_latents(*vae_, history.slice(2, 0, n), tiling);
          pixels = pipeline::soft_append_bcthw(current, pixels, overlap);
        }
      } else {
        history = at::cat({history, latents}, 2);
        if (!pixels.defined()) {
          pixels = pipeline::decode_latents(*vae_, history, tiling);
        } else {
          const std::int64_t t = history.size(2);
          const at::Tensor current =
              pipeline::decode_latents(*vae_, history.slice(2, t - window * 2, t), tiling);
          pixels = pipeline::soft_append_bcthw(pixels, current, overlap);
        }
      }
    }
    return pixels;
  }

  static std::shared_ptr<PackedTransformer> transformer_;
  static std::shared_ptr<Vae> vae_;
};

std::shared_ptr<PackedTransformer> StreamedVideo::transformer_;
std::shared_ptr<Vae> StreamedVideo::vae_;

TEST_F(StreamedVideo, ChunksEqualTheWholeHistoryVideo) {
  for (const auto v : {pipeline::LoopVariant::kOriginal, pipeline::LoopVariant::kF1}) {
    for (const int sections : {1, 2, 5}) {
      const LoopRun r = run(v, sections);
      const at::Tensor reference = whole_history_video(r, v);
      ASSERT_EQ(r.video.sizes(), reference.sizes()) << int(v) << " " << sections;
      EXPECT_EQ(r.video.size(2), r.result.total_frames);
      EXPECT_TRUE(at::equal(r.video, reference))
          << "variant " << int(v) << ", " << sections << " sections: max |diff| "
          << (r.video - reference).abs().max().item<double>();
    }
  }
}

// Every frame of the video is final in exactly one chunk; the original loop's chunks come last
// part first, F1's first part first.
TEST_F(StreamedVideo, FinalFramesTileTheVideoOnce) {
  for (const auto v : {pipeline::LoopVariant::kOriginal, pipeline::LoopVariant::kF1}) {
    const LoopRun r = run(v, 4);
    std::vector<int> covered(std::size_t(r.result.total_frames), 0);
    std::int64_t previous_first =
        v == pipeline::LoopVariant::kOriginal ? r.result.total_frames : -1;
    for (const auto& s : r.sections) {
      for (std::int64_t i = 0; i < s.final_pixels.size(2); ++i)
        ++covered[std::size_t(s.first_final_frame + i)];
      if (s.final_pixels.size(2) == 0) continue;
      if (v == pipeline::LoopVariant::kOriginal) {
        EXPECT_LT(s.first_final_frame, previous_first);
      } else {
        EXPECT_GT(s.first_final_frame, previous_first);
      }
      previous_first = s.first_final_frame;
    }
    EXPECT_EQ(covered, std::vector<int>(covered.size(), 1)) << "variant " << int(v);
    EXPECT_EQ(r.sections.back().tail_pixels.size(2), 0);
  }
}

// The loop's own memory: the latent history it keeps and the pixel frames it holds between
// sections are the same for 2 and 8 sections, and so is the largest chunk it hands out.
TEST_F(StreamedVideo, HeldFramesDoNotGrowWithTheSections) {
  for (const auto v : {pipeline::LoopVariant::kOriginal, pipeline::LoopVariant::kF1}) {
    const LoopRun few = run(v, 3);
    const LoopRun many = run(v, 8);
    EXPECT_GT(many.result.total_frames, 2 * few.result.total_frames);
    EXPECT_EQ(many.result.max_held_latent_frames, few.result.max_held_latent_frames);
    EXPECT_EQ(many.result.max_held_pixel_frames, few.result.max_held_pixel_frames);
    auto largest_chunk = [](const LoopRun& r) {
      std::int64_t n = 0;
      for (const auto& s : r.sections)
        n = std::max(n, s.final_pixels.size(2) + s.tail_pixels.size(2));
      return n;
    };
    EXPECT_EQ(largest_chunk(many), largest_chunk(few)) << "variant " << int(v);
    // 2 windows + 1 of latents and one decode of them at most, whatever the length.
    EXPECT_LE(many.result.max_held_latent_frames, 19);
    EXPECT_LE(many.result.max_held_pixel_frames, pipeline::pixel_frames_for_latents(2 * 2 + 1));
  }
}

}  // namespace
