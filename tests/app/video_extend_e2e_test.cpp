// Video extension end to end, through framesmith-cli's generate on the tiny model with real
// video files (FFmpeg's libraries write and read them): `--video FILE` forwards (F1) and
// backwards (original) makes the clip followed by the new frames at the clip's frame rate and
// size, the clip's frames before the seam unchanged; the job file runs it again to the same
// video; and hostile input (a damaged file, a file with no frames, too few frames, 10-bit and
// variable-frame-rate video, contradicting options) gets a clear message or note, with no
// video written for a refused job.
#include <gtest/gtest.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"
#include "framesmith/pipeline.h"
#include "video_reader.h"
#include "video_writer.h"

namespace fs = std::filesystem;
using namespace framesmith;

namespace {

struct CliRun {
  int rc = -1;
  std::string out, err;
};

CliRun cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CliRun r;
  r.rc = app::run_cli(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// A square moving across a gradient: frames that differ from each other and from noise.
Frames moving_square(int w, int h, int count) {
  Frames f;
  f.width = w;
  f.height = h;
  f.count = count;
  f.rgb.resize(std::size_t(w) * h * 3 * count);
  for (int i = 0; i < count; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        std::uint8_t* p = f.rgb.data() + ((std::size_t(i) * h + y) * w + x) * 3;
        const bool square = x >= 4 * i && x < 4 * i + 24 && y >= 40 && y < 64;
        p[0] = square ? 250 : std::uint8_t(x * 200 / w);
        p[1] = square ? 20 : std::uint8_t(y * 200 / h);
        p[2] = 100;
      }
  return f;
}

void write_clip(const std::string& path, const Frames& f, double fps) {
  app::VideoWriter w;
  w.open(path, f.width, f.height, fps, 0);
  for (int i = 0; i < f.count; ++i) w.write_frame(f.frame(i), f.width * 3);
  w.finish();
}

// A Matroska file in FFV1 with a chosen pixel format and frame times (milliseconds): the
// 10-bit and variable-frame-rate inputs that VideoWriter (8-bit, constant rate) does not make.
void write_ffv1(const std::string& path, const Frames& f, AVPixelFormat pix,
                const std::vector<std::int64_t>& pts_ms) {
  AVFormatContext* fmt = nullptr;
  ASSERT_GE(avformat_alloc_output_context2(&fmt, nullptr, "matroska", path.c_str()), 0);
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_FFV1);
  ASSERT_NE(codec, nullptr);
  AVStream* st = avformat_new_stream(fmt, nullptr);
  AVCodecContext* c = avcodec_alloc_context3(codec);
  c->width = f.width;
  c->height = f.height;
  c->pix_fmt = pix;
  c->time_base = AVRational{1, 1000};
  ASSERT_GE(avcodec_open2(c, codec, nullptr), 0);
  avcodec_parameters_from_context(st->codecpar, c);
  st->time_base = c->time_base;
  ASSERT_GE(avio_open(&fmt->pb, path.c_str(), AVIO_FLAG_WRITE), 0);
  ASSERT_GE(avformat_write_header(fmt, nullptr), 0);
  SwsContext* sws = sws_getContext(f.width, f.height, AV_PIX_FMT_RGB24, f.width, f.height, pix,
                                   SWS_BICUBIC, nullptr, nullptr, nullptr);
  AVFrame* frame = av_frame_alloc();
  frame->width = f.width;
  frame->height = f.height;
  frame->format = pix;
  av_frame_get_buffer(frame, 0);
  AVPacket* pkt = av_packet_alloc();
  auto drain = [&] {
    while (avcodec_receive_packet(c, pkt) == 0) {
      av_packet_rescale_ts(pkt, c->time_base, st->time_base);
      pkt->stream_index = st->index;
      av_interleaved_write_frame(fmt, pkt);
    }
  };
  for (int i = 0; i < f.count; ++i) {
    av_frame_make_writable(frame);
    const std::uint8_t* src[1] = {f.frame(i)};
    const int stride[1] = {f.width * 3};
    sws_scale(sws, src, stride, 0, f.height, frame->data, frame->linesize);
    frame->pts = pts_ms[std::size_t(i)];
    avcodec_send_frame(c, frame);
    drain();
  }
  avcodec_send_frame(c, nullptr);
  drain();
  av_write_trailer(fmt);
  av_packet_free(&pkt);
  av_frame_free(&frame);
  sws_freeContext(sws);
  avcodec_free_context(&c);
  avio_closep(&fmt->pb);
  avformat_free_context(fmt);
}

double psnr(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
  double se = 0;
  for (std::size_t i = 0; i < n; ++i) se += double(int(a[i]) - int(b[i])) * (int(a[i]) - int(b[i]));
  return se == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / (se / double(n)));
}

Frames read_video(const std::string& path, double* fps = nullptr) {
  app::VideoReader r;
  r.open(path);
  Frames f = r.read_all();
  if (fps) *fps = r.fps();
  return f;
}

class VideoExtendE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() / ("framesmith-video-extend-" + std::to_string(::getpid())))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = dir_ + "/tiny";
    app::quiet_ffmpeg_logging();
    const CliRun r = cli({"make-tiny-model", model_, "--seed", "0"});
    ASSERT_EQ(r.rc, 0) << r.err;
    write_clip(dir_ + "/clip.mp4", moving_square(128, 128, kClipFrames), 24);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // generate --video with the tiny model's quick settings, lossless output.
  static std::vector<std::string> args(const std::string& video, const std::string& out) {
    return {"generate",
            "--model",
            model_,
            "--video",
            video,
            "--prompt",
            "a red square moves",
            "--seconds",
            "1",
            "--steps",
            "2",
            "--resolution",
            "128",
            "--window",
            "3",
            "--no-teacache",
            "--crf",
            "0",
            "--quiet",
            "--out",
            out};
  }

  static constexpr int kClipFrames = 30;
  static inline std::string dir_, model_;
};

// 1 s at window 3 is 2 sections of 3 latents: 24 new frames after the clip's 30. The seam blends
// the clip's last 9 frames (its last 3 latents); the 21 before them are the clip's own.
void expect_extension(const std::string& out, const Frames& clip, int clip_frames) {
  double fps = 0;
  const Frames v = read_video(out, &fps);
  EXPECT_EQ(v.count, clip_frames + 24);
  EXPECT_EQ(v.width, 128);
  EXPECT_EQ(v.height, 128);
  EXPECT_NEAR(fps, 24.0, 1e-6);
  const std::size_t frame = std::size_t(v.width) * v.height * 3;
  const std::size_t unchanged = std::size_t(clip_frames - 9);
  // `clip` is the file's frames as the engine got them; the output's went through one more
  // RGB -> YUV 4:2:0 -> RGB round trip: equal up to its rounding.
  EXPECT_GT(psnr(v.rgb.data(), clip.rgb.data(), frame * unchanged), 40.0);
  // The new frames are the tiny model's noise, nothing like the clip.
  EXPECT_LT(psnr(v.frame(v.count - 1), clip.frame(clip_frames - 1), frame), 20.0);
}

TEST_F(VideoExtendE2E, ForwardAndBackwardContinueTheClipAtItsRateAndSize) {
  for (const std::string direction : {"forward", "backward"}) {
    SCOPED_TRACE(direction);
    const std::string out = dir_ + "/" + direction + ".mp4";
    std::vector<std::string> a = args(dir_ + "/clip.mp4", out);
    a.insert(a.end(), {"--extend", direction, "--events", out + ".events.jsonl"});
    const CliRun r = cli(a);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_NE(r.out.find("54 frames"), std::string::npos) << r.out;
    expect_extension(out, read_video(dir_ + "/clip.mp4"), kClipFrames);
    std::ifstream events(out + ".events.jsonl");
    const std::string text((std::istreambuf_iterator<char>(events)), {});
    EXPECT_NE(text.find(std::string("video extension (") + direction), std::string::npos);
  }
}

// The job file keeps the clip's path, rate and context; it runs again to the same video.
TEST_F(VideoExtendE2E, JobFileRunsTheExtensionAgain) {
  const std::string first = dir_ + "/job-first.mp4", again = dir_ + "/job-again.mp4";
  std::vector<std::string> a = args(dir_ + "/clip.mp4", first);
  a.insert(a.end(), {"--extend", "forward", "--video-context", "3"});
  ASSERT_EQ(cli(a).rc, 0);
  std::ifstream in(first.substr(0, first.size() - 4) + ".json");
  ASSERT_TRUE(in) << "no job file beside " << first;
  const nlohmann::json job = nlohmann::json::parse(in);
  EXPECT_EQ(job.at("job_format"), 3);
  EXPECT_EQ(job.at("variant"), "f1");
  EXPECT_EQ(job.at("input_video").at("path"), fs::absolute(dir_ + "/clip.mp4").string());
  EXPECT_EQ(job.at("input_video").at("fps"), 24.0);
  EXPECT_EQ(job.at("input_video").at("context_frames"), 3);
  const CliRun r = cli({"generate", "--job", first.substr(0, first.size() - 4) + ".json", "--out",
                        again, "--crf", "0", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const Frames x = read_video(first), y = read_video(again);
  ASSERT_EQ(x.count, y.count);
  EXPECT_EQ(x.rgb, y.rgb);  // lossless: equal frames decode to equal bytes
}

// A job that lost its last section (killed before it was saved) resumes, reading the clip
// again from its path, to the uninterrupted video; a clip that changed since is refused.
TEST_F(VideoExtendE2E, ResumeReadsTheClipAgainAndGivesTheSameVideo) {
  const std::string clip = dir_ + "/resume-clip.mp4", out = dir_ + "/resume.mp4";
  const std::string job = dir_ + "/resume.job";
  fs::copy_file(dir_ + "/clip.mp4", clip);
  ASSERT_EQ(cli(args(clip, out)).rc, 0);
  const Frames whole = read_video(out);
  ASSERT_TRUE(fs::remove(job + "/section_0001.safetensors"));
  fs::remove(out);
  CliRun r = cli({"resume", job, "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("1 of 2 sections resumed"), std::string::npos) << r.out;
  const Frames resumed = read_video(out);
  ASSERT_EQ(resumed.count, whole.count);
  EXPECT_EQ(resumed.rgb, whole.rgb);
  ASSERT_TRUE(fs::remove(job + "/section_0001.safetensors"));
  write_clip(clip, moving_square(128, 128, 20), 24);
  r = cli({"resume", job, "--quiet"});
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("is not the video this job extends (it has 20 frames"), std::string::npos)
      << r.err;
}

// A 10-bit, variable-frame-rate clip is used, and the user is told how.
TEST_F(VideoExtendE2E, TenBitVariableRateClipIsConvertedWithNotes) {
  const std::string clip = dir_ + "/vfr10.mkv";
  std::vector<std::int64_t> pts;
  for (int i = 0; i < 12; ++i) pts.push_back(i * 40 + (i > 6 ? 60 : 0));  // a 100 ms gap
  write_ffv1(clip, moving_square(128, 128, 12), AV_PIX_FMT_YUV420P10LE, pts);
  const CliRun r = cli(args(clip, dir_ + "/vfr10.mp4"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("10-bit video (yuv420p10le)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("variable frame rate"), std::string::npos) << r.err;
  EXPECT_EQ(read_video(dir_ + "/vfr10.mp4").count, 12 + 24);
}

// Each refused job says why in one line, naming what is wrong, and writes no video.
TEST_F(VideoExtendE2E, BadInputIsRefusedWithAClearMessage) {
  const Frames three = moving_square(128, 128, 3);
  write_clip(dir_ + "/three.mp4", three, 24);
  {
    std::ofstream junk(dir_ + "/junk.mp4", std::ios::binary);
    for (int i = 0; i < 4096; ++i) junk.put(char(i * 7919 % 251));
  }
  {
    // A real clip cut in half: the index at its front promises frames its data no longer holds.
    std::ifstream in(dir_ + "/clip.mp4", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream cut(dir_ + "/cut.mp4", std::ios::binary);
    cut.write(bytes.data(), std::streamsize(bytes.size() / 2));
  }
  std::ofstream(dir_ + "/empty.mp4").close();
  struct Case {
    std::string name;
    std::vector<std::string> extra;
    std::string video, expect;
  };
  const std::string clip = dir_ + "/clip.mp4";
  const std::vector<Case> cases = {
      {"missing", {}, dir_ + "/nope.mp4", "nope.mp4"},
      {"empty file", {}, dir_ + "/empty.mp4", "empty.mp4"},
      {"not a video", {}, dir_ + "/junk.mp4", "junk.mp4"},
      {"cut short", {}, dir_ + "/cut.mp4", "cut.mp4"},
      {"three frames",
       {},
       dir_ + "/three.mp4",
       "has 3 frame(s): extending a video needs at least 4"},
      {"extend contradicts variant",
       {"--extend", "forward", "--variant", "original"},
       clip,
       "--extend forward runs the F1 model"},
      {"bad direction", {"--extend", "sideways"}, clip, "--extend must be forward or backward"},
      {"image too", {"--image", clip}, clip, "not both"},
      {"context", {"--video-context", "11"}, clip, "video context frames must be 1..10"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    const std::string out = dir_ + "/refused-" + std::to_string(i) + ".mp4";
    std::vector<std::string> a = args(c.video, out);
    a.insert(a.end(), c.extra.begin(), c.extra.end());
    const CliRun r = cli(a);
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  const CliRun r = cli({"generate", "--model", model_, "--image", clip, "--extend", "forward",
                        "--prompt", "x", "--out", dir_ + "/x.mp4"});
  EXPECT_NE(r.err.find("--extend needs --video FILE"), std::string::npos) << r.err;
}

}  // namespace
