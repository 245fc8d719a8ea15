// MP4 round trips through VideoWriter / VideoReader: sizes (even and odd), frame count, frame rate,
// quality (PSNR), metadata, encoder fallback, and the error paths (bad folder, full disk).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#ifdef __linux__
#include <sys/resource.h>
#include <csignal>
#endif

#include "framesmith/error.h"
#include "framesmith/pipeline.h"
#include "video_reader.h"
#include "video_writer.h"

namespace fs = std::filesystem;
using framesmith::Frames;
using framesmith::app::VideoReader;
using framesmith::app::VideoWriter;

namespace {

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

// Smooth gradients with a soft-edged disc and square moving across them.
Frames make_frames(int w, int h, int n) {
  Frames f;
  f.width = w;
  f.height = h;
  f.count = n;
  f.rgb.resize(std::size_t(w) * h * 3 * n);
  const double pi = 3.14159265358979;
  for (int t = 0; t < n; ++t) {
    const double p = n > 1 ? double(t) / (n - 1) : 0.0;
    const double cx = w * (0.2 + 0.6 * p), cy = h * (0.5 + 0.25 * std::sin(2 * pi * p));
    const double r = std::min(w, h) * 0.25;
    const double sx = w * (0.8 - 0.6 * p), sy = h * 0.3, half = std::min(w, h) * 0.15;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        double c[3] = {40 + 180.0 * x / std::max(w - 1, 1), 30 + 190.0 * y / std::max(h - 1, 1),
                       128 + 60 * std::sin(2 * pi * (p + double(x + y) / (w + h)))};
        const double disc = 1 - smoothstep(r - 4, r + 4, std::hypot(x - cx, y - cy));
        const double box = (1 - smoothstep(half - 4, half + 4, std::abs(x - sx))) *
                           (1 - smoothstep(half - 4, half + 4, std::abs(y - sy)));
        const double dc[3] = {235, 70, 50}, bc[3] = {30, 190, 215};
        std::uint8_t* px = f.rgb.data() + ((std::size_t(t) * h + y) * w + x) * 3;
        for (int k = 0; k < 3; ++k) {
          double v = c[k] * (1 - disc) + dc[k] * disc;
          v = v * (1 - box) + bc[k] * box;
          px[k] = std::uint8_t(std::clamp(std::lround(v), 0L, 255L));
        }
      }
    }
  }
  return f;
}

double psnr(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  double se = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = double(a[i]) - double(b[i]);
    se += d * d;
  }
  const double mse = se / double(std::max<std::size_t>(a.size(), 1));
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

void write_video(VideoWriter& w, const std::string& path, const Frames& f, int crf = 16,
                 const std::map<std::string, std::string>& meta = {}) {
  w.open(path, f.width, f.height, 30, crf, "medium", meta);
  for (int i = 0; i < f.count; ++i) w.write_frame(f.frame(i), f.width * 3);
  w.finish();
}

class VideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("framesmith_video_test_" + std::string(info->name()) + "_" +
                                        std::to_string(std::random_device{}()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    framesmith::app::quiet_ffmpeg_logging();  // x264 statistics and absent hardware encoders
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Writes, reads back and checks size, count, rate; returns the PSNR over all frames.
  double round_trip(int w, int h, int n, const std::string& name, std::string* encoder = nullptr) {
    const Frames src = make_frames(w, h, n);
    const std::string path = file(name);
    VideoWriter writer;
    write_video(writer, path, src);
    if (encoder) *encoder = writer.encoder();
    EXPECT_EQ(writer.frames_written(), n);
    EXPECT_FALSE(fs::exists(path + ".partial"));
    VideoReader reader;
    reader.open(path);
    EXPECT_EQ(reader.width(), w);
    EXPECT_EQ(reader.height(), h);
    EXPECT_NEAR(reader.fps(), 30.0, 1e-9);
    EXPECT_EQ(reader.frame_count(), n);
    const Frames back = reader.read_all();
    EXPECT_EQ(back.count, n);
    EXPECT_EQ(back.width, w);
    EXPECT_EQ(back.height, h);
    const double db = psnr(src.rgb, back.rgb);
    std::cout << "[ info ] " << w << "x" << h << " x" << n << " " << writer.encoder() << " coded "
              << writer.coded_width() << "x" << writer.coded_height() << " CRF 16: PSNR " << db
              << " dB, " << fs::file_size(path) << " bytes\n";
    return db;
  }

  fs::path dir_;
};

TEST_F(VideoTest, RoundTripEvenSize) {
  std::string enc;
  EXPECT_GE(round_trip(64, 48, 40, "even.mp4", &enc), 35.0);
  EXPECT_EQ(enc, "libx264");
}

TEST_F(VideoTest, RoundTripOddSizeIsPaddedAndCroppedBack) {
  EXPECT_GE(round_trip(33, 17, 25, "odd.mp4"), 35.0);
  VideoWriter w;
  w.open(file("odd2.mp4"), 33, 17);
  EXPECT_EQ(w.coded_width(), 34);
  EXPECT_EQ(w.coded_height(), 18);
}

TEST_F(VideoTest, SingleFrameSurvives) {
  // The last frame is the one lost when packet durations are missing.
  EXPECT_GE(round_trip(64, 48, 1, "one.mp4"), 35.0);
}

TEST_F(VideoTest, RandomAccessMatchesSequentialRead) {
  const Frames src = make_frames(48, 32, 12);
  VideoWriter w;
  write_video(w, file("ra:1.mp4"), src);
  VideoReader r;
  r.open(file("ra:1.mp4"));
  const Frames all = r.read_all();
  ASSERT_EQ(all.count, 12);
  for (int i : {7, 8, 2, 11, 0}) {
    const std::vector<std::uint8_t> one = r.read_frame(i);
    const std::vector<std::uint8_t> expect(all.frame(i), all.frame(i) + one.size());
    EXPECT_EQ(one, expect) << "frame " << i;
  }
  EXPECT_THROW(r.read_frame(12), framesmith::Error);
}

TEST_F(VideoTest, MetadataRoundTrip) {
  const std::map<std::string, std::string> meta = {
      {"title", "A cat, walking"},
      {"comment", "made with Framesmith"},
      {"framesmith_params",
       "{\"prompt\": \"a \\\"quoted\\\" prompt\\nwith a newline, é ü\", \"seed\": 31337}"},
      {"framesmith_seed", "31337"}};
  VideoWriter w;
  write_video(w, file("meta.mp4"), make_frames(33, 17, 3), 16, meta);
  VideoReader r;
  r.open(file("meta.mp4"));
  for (const auto& [k, v] : meta) {
    auto it = r.metadata().find(k);
    ASSERT_NE(it, r.metadata().end()) << k;
    EXPECT_EQ(it->second, v) << k;
  }
  EXPECT_EQ(r.metadata().count(framesmith::app::kSizeTag), 0u);
}

TEST_F(VideoTest, MissingOrUnwritableFolderNamesThePath) {
  const Frames f = make_frames(16, 16, 1);
  const std::vector<std::string> bad = {file("no/such/folder/out.mp4"), dir_.string(),
                                        "/proc/framesmith_video_test.mp4"};
  for (const std::string& path : bad) {
    if (path.rfind("/proc/", 0) == 0 && !fs::is_directory("/proc")) continue;
    VideoWriter w;
    try {
      w.open(path, f.width, f.height);
      w.write_frame(f.frame(0), f.width * 3);
      w.finish();
      ADD_FAILURE() << "no error for " << path;
    } catch (const framesmith::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      std::cout << "[ info ] " << e.what() << "\n";
    }
  }
}

TEST_F(VideoTest, BadArgumentsAreRejected) {
  VideoWriter w;
  EXPECT_THROW(w.open(file("a.mp4"), 0, 16), framesmith::Error);
  EXPECT_THROW(w.open(file("a.mp4"), 16, 16, 0.0), framesmith::Error);
  EXPECT_THROW(w.open(file("a.mp4"), 16, 16, 30, 60), framesmith::Error);
  EXPECT_THROW(w.open(file("a.mp4"), 16, 16, 30, 16, "warp9"), framesmith::Error);
  w.open(file("a.mp4"), 16, 16);
  EXPECT_THROW(w.finish(), framesmith::Error);  // no frames
  EXPECT_FALSE(fs::exists(file("a.mp4")));
  EXPECT_FALSE(fs::exists(file("a.mp4.partial")));
  VideoReader r;
  EXPECT_THROW(r.open(file("missing.mp4")), framesmith::Error);
}

TEST_F(VideoTest, EncoderFallback) {
  const auto defaults = VideoWriter::default_encoders();
  ASSERT_FALSE(defaults.empty());
  EXPECT_EQ(defaults.front(), "libx264");
  EXPECT_EQ(defaults.back(), "mpeg4");

  const Frames f = make_frames(64, 48, 10);
  VideoWriter w;
  w.set_encoders({"framesmith_no_such_encoder", "libx264"});
  write_video(w, file("fb.mp4"), f);
  EXPECT_EQ(w.encoder(), "libx264");
  ASSERT_EQ(w.encoder_attempts().size(), 1u);
  EXPECT_NE(w.encoder_attempts()[0].find("framesmith_no_such_encoder"), std::string::npos);

  // The last resort: MPEG-4 Part 2 with a fixed quantiser.
  w.set_encoders({"framesmith_no_such_encoder", "mpeg4"});
  write_video(w, file("mpeg4.mp4"), f);
  EXPECT_EQ(w.encoder(), "mpeg4");
  VideoReader r;
  r.open(file("mpeg4.mp4"));
  EXPECT_EQ(r.codec(), "mpeg4");
  const Frames back = r.read_all();
  EXPECT_EQ(back.count, f.count);
  const double db = psnr(f.rgb, back.rgb);
  std::cout << "[ info ] mpeg4 fallback 64x48: PSNR " << db << " dB, "
            << fs::file_size(file("mpeg4.mp4")) << " bytes\n";
  EXPECT_GE(db, 30.0);

  // The default list without libx264: hardware encoders fail to open without their hardware and
  // the next candidate is tried (mpeg4 on a machine without any).
  auto no_x264 = defaults;
  no_x264.erase(no_x264.begin());
  w.set_encoders(no_x264);
  write_video(w, file("no_x264.mp4"), f);
  std::cout << "[ info ] without libx264: " << w.encoder() << " after "
            << w.encoder_attempts().size() << " failed attempts\n";
  for (const auto& a : w.encoder_attempts()) std::cout << "[ info ]   " << a << "\n";
  r.open(file("no_x264.mp4"));
  EXPECT_EQ(r.read_all().count, f.count);

  w.set_encoders({"framesmith_no_such_encoder", "aac"});
  try {
    w.open(file("none.mp4"), 16, 16);
    ADD_FAILURE() << "no error without a usable encoder";
  } catch (const framesmith::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("framesmith_no_such_encoder"), std::string::npos) << msg;
    EXPECT_NE(msg.find("aac"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(file("none.mp4.partial")));
}

TEST_F(VideoTest, UnfinishedWriteKeepsThePreviousFile) {
  const std::string path = file("keep.mp4");
  VideoWriter first;
  write_video(first, path, make_frames(32, 32, 4));
  const auto old_size = fs::file_size(path);
  {
    VideoWriter w;
    const Frames more = make_frames(32, 32, 8);
    w.open(path, 32, 32);
    for (int i = 0; i < more.count; ++i) w.write_frame(more.frame(i), 96);
    EXPECT_TRUE(fs::exists(path + ".partial"));
    EXPECT_EQ(fs::file_size(path), old_size);
  }  // destroyed without finish(): as if the job had crashed or been cancelled
  EXPECT_FALSE(fs::exists(path + ".partial"));
  VideoReader r;
  r.open(path);
  EXPECT_EQ(r.read_all().count, 4);
}

#ifdef __linux__
// A file size limit makes write() fail with EFBIG, like a full disk fails with ENOSPC.
TEST_F(VideoTest, WriteErrorNamesThePathAndLeavesNoFile) {
  const std::string path = file("full.mp4");
  Frames noise = make_frames(128, 128, 30);
  std::uint32_t s = 12345;
  for (auto& b : noise.rgb) b = std::uint8_t((s = s * 1664525u + 1013904223u) >> 24);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 64 * 1024;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  try {
    VideoWriter w;
    write_video(w, path, noise);
  } catch (const framesmith::Error& e) {
    msg = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  std::cout << "[ info ] " << msg << "\n";
  ASSERT_FALSE(msg.empty()) << "no error past the file size limit";
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}
#endif

}  // namespace
