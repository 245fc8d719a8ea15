// Whole generations through the public API on the tiny model: frame counts, cancel, bad input.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "framesmith/engine_cli.h"
#include "framesmith/pipeline.h"
#include "support/engine_commands.h"

using namespace framesmith;
using framesmith::test::gradient;

namespace {

std::string tiny_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/fs_gen_XXXXXX";
    std::string d = std::string(::mkdtemp(tmpl)) + "/tiny";
    make_tiny_model(d, 0);
    return d;
  }();
  return dir;
}

GenerationRequest small_request() {
  GenerationRequest r;
  r.model_dir = tiny_dir();
  r.image = gradient(96, 64);
  r.prompt = "a gradient that moves";
  r.seconds = 1.0;
  r.steps = 3;
  r.latent_window = 2;
  r.resolution = 64;
  r.cache = StepCache::kNone;
  return r;
}

}  // namespace

TEST(Generate, OriginalLoopMakesTheExpectedFrames) {
  GenerationRequest r = small_request();
  int chunks = 0, progress = 0;
  std::int64_t final_frames = 0;
  GenerationCallbacks cb;
  cb.on_chunk = [&](const VideoChunk& c) {
    ++chunks;
    EXPECT_LE(c.section, c.sections);
    EXPECT_GT(c.final_frames.count + c.tail.count, 0);
    final_frames += c.final_frames.count;
  };
  cb.on_progress = [&](const Progress&) { ++progress; };
  const GenerationResult res = generate(r, cb);
  ASSERT_EQ(res.status, StatusCode::kOk) << res.message;
  // 1 s at 30 fps with window 2: round(30 / 8) = 4 sections; each adds 4·window frames after the
  // first decode of window + 1 latents (FramePack's arithmetic).
  EXPECT_EQ(res.sections_total, 4);
  EXPECT_EQ(res.sections_done, 4);
  EXPECT_EQ(chunks, 4);
  EXPECT_GT(progress, 4 * 3);
  EXPECT_EQ(final_frames, 1 + 4 * (4 * 2 + 1 - 1));
  EXPECT_EQ(res.video.count, 0);  // the chunks had it all: the engine kept no whole video
  EXPECT_EQ(res.input_image.height % 16, 0);
}

// The chunks placed by their frame index are the video a client without on_chunk gets, byte
// for byte, for both loops; they tile the video exactly once, and a client never holds more
// than one chunk.
TEST(Generate, ChunksPutTogetherAreTheWholeVideo) {
  for (const auto variant : {TransformerVariant::kOriginal, TransformerVariant::kF1}) {
    GenerationRequest r = small_request();
    r.variant = variant;
    const GenerationResult whole = generate(r, {});
    ASSERT_EQ(whole.status, StatusCode::kOk) << whole.message;
    std::vector<std::uint8_t> video;
    std::vector<int> written;
    std::size_t frame_bytes = 0;
    GenerationCallbacks cb;
    cb.on_chunk = [&](const VideoChunk& c) {
      frame_bytes = std::size_t(c.final_frames.width) * c.final_frames.height * 3;
      video.resize(std::size_t(c.total_frames) * frame_bytes);
      written.resize(std::size_t(c.total_frames));
      std::copy(c.final_frames.rgb.begin(), c.final_frames.rgb.end(),
                video.begin() + std::ptrdiff_t(c.first_final_frame * frame_bytes));
      for (int i = 0; i < c.final_frames.count; ++i) ++written[c.first_final_frame + i];
      EXPECT_EQ(c.tail.count, c.section == c.sections ? 0 : 4 * r.latent_window - 3);
    };
    const GenerationResult streamed = generate(r, cb);
    ASSERT_EQ(streamed.status, StatusCode::kOk) << streamed.message;
    EXPECT_EQ(written, std::vector<int>(std::size_t(whole.video.count), 1));
    EXPECT_TRUE(video == whole.video.rgb) << "variant " << int(variant);
  }
}

TEST(Generate, SameSeedSameVideo) {
  GenerationRequest r = small_request();
  r.seconds = 0.5;
  const GenerationResult a = generate(r, {});
  const GenerationResult b = generate(r, {});
  ASSERT_EQ(a.status, StatusCode::kOk) << a.message;
  EXPECT_EQ(a.video.rgb, b.video.rgb);
  r.seed += 1;
  const GenerationResult c = generate(r, {});
  EXPECT_NE(a.video.rgb, c.video.rgb);
}

// The cache choice reaches the transformer: MagCache's decisions depend only on its calibration,
// the picture size and the step count, so at 64 px and 10 steps every sampled section skips the
// blocks in exactly the 4 calls FramePack-Studio's reference skips ([1,1,0,1,0,0,1,0,1,1],
// fpstudio-tiny-a); with no cache every call computes. Each section_done event says so.
TEST(Generate, TheCacheChoiceDecidesWhichStepsCompute) {
  for (const StepCache cache : {StepCache::kNone, StepCache::kMagCache}) {
    GenerationRequest r = small_request();
    r.seconds = 0.5;
    r.steps = 10;
    r.cache = cache;
    std::vector<std::pair<double, double>> steps;  // computed, reused per section
    GenerationCallbacks cb;
    cb.on_event = [&](const Event& e) {
      if (e.type == EventType::kSectionDone)
        steps.emplace_back(e.number("calls_computed"), e.number("calls_reused"));
    };
    const GenerationResult res = generate(r, cb);
    ASSERT_EQ(res.status, StatusCode::kOk) << res.message;
    ASSERT_EQ(int(steps.size()), res.sections_total);
    for (const auto& [computed, reused] : steps) {
      EXPECT_EQ(computed + reused, 10);
      EXPECT_EQ(reused, cache == StepCache::kMagCache ? 4 : 0) << to_string(cache);
    }
  }
}

TEST(Generate, F1LoopAppendsSections) {
  GenerationRequest r = small_request();
  r.variant = TransformerVariant::kF1;
  const GenerationResult res = generate(r, {});
  ASSERT_EQ(res.status, StatusCode::kOk) << res.message;
  EXPECT_EQ(res.sections_done, 4);
  EXPECT_GT(res.video.count, 4 * 2 * 4 - 4);
}

TEST(Generate, CancelStopsBetweenStepsAndKeepsFinishedSections) {
  GenerationRequest r = small_request();
  std::atomic<bool> cancel{false};
  GenerationCallbacks cb;
  cb.cancel = &cancel;
  cb.on_section_saved = [&](const SectionSaved& s) {
    if (s.section == 1) cancel.store(true);
  };
  const GenerationResult res = generate(r, cb);
  EXPECT_EQ(res.status, StatusCode::kCancelled);
  EXPECT_EQ(res.sections_done, 1);
  EXPECT_GT(res.video.count, 0);  // the finished section's frames are kept
}

TEST(Generate, BadInputIsAStatusNotACrash) {
  GenerationRequest r = small_request();
  r.model_dir = "/nonexistent/model";
  GenerationResult res = generate(r, {});
  EXPECT_EQ(res.status, StatusCode::kBadInput);
  EXPECT_NE(res.message.find("/nonexistent/model"), std::string::npos) << res.message;

  r = small_request();
  r.image = Frames{};
  res = generate(r, {});
  EXPECT_EQ(res.status, StatusCode::kBadInput);

  r = small_request();
  r.steps = 0;
  res = generate(r, {});
  EXPECT_EQ(res.status, StatusCode::kBadInput);
  EXPECT_NE(res.message.find("steps"), std::string::npos);

  r = small_request();
  r.conditioning_file = "/nonexistent/cond.safetensors";
  res = generate(r, {});
  EXPECT_EQ(res.status, StatusCode::kBadInput);
}
