// Job output without a model: the job folder's files and names, loading parameters back from the
// sidecar and from the MP4, PNG export from the command line, and the error paths (unwritable
// folders, a file size limit as a stand-in for a full disk): one clear line, nothing made lost.
#include <gtest/gtest.h>

#include <QImage>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#endif

#include "cli.h"
#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "job_output.h"
#include "png_export.h"
#include "video_concat.h"
#include "video_reader.h"
#include "video_writer.h"

namespace fs = std::filesystem;
using namespace framesmith;
using namespace framesmith::app;

namespace {

Frames make_frames(int w, int h, int n, std::uint32_t seed = 1) {
  Frames f;
  f.width = w;
  f.height = h;
  f.count = n;
  f.rgb.resize(std::size_t(w) * h * 3 * n);
  for (int t = 0; t < n; ++t)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int k = 0; k < 3; ++k)
          f.rgb[((std::size_t(t) * h + y) * w + x) * 3 + k] =
              std::uint8_t((x * 3 + y * 2 + t * 9 + k * 60 + seed * 17) % 256);
  return f;
}

// Noise compresses badly: a video of it is large enough to pass a small file size limit.
Frames noise_frames(int w, int h, int n) {
  Frames f = make_frames(w, h, n);
  std::uint32_t s = 777;
  for (auto& b : f.rgb) b = std::uint8_t((s = s * 1664525u + 1013904223u) >> 24);
  return f;
}

GenerationRequest request() {
  GenerationRequest r;
  r.model_dir = "/models/tiny";
  r.prompt = "a lighthouse at dusk";
  r.negative_prompt = "blurry";
  r.seconds = 2.5;
  r.seed = 4242;
  r.steps = 7;
  r.distilled_cfg = 9.5;
  r.latent_window = 5;
  r.resolution = 320;
  r.cache = StepCache::kMagCache;
  r.magcache_threshold = 0.2;
  r.magcache_max_skips = 3;
  r.magcache_retention = 0.1;
  r.teacache_threshold = 0.25;
  r.variant = TransformerVariant::kF1;
  return r;
}

void expect_same_params(const GenerationRequest& a, const GenerationRequest& b) {
  EXPECT_EQ(a.model_dir, b.model_dir);
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.negative_prompt, b.negative_prompt);
  EXPECT_EQ(a.seconds, b.seconds);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.distilled_cfg, b.distilled_cfg);
  EXPECT_EQ(a.latent_window, b.latent_window);
  EXPECT_EQ(a.resolution, b.resolution);
  EXPECT_EQ(a.cache, b.cache);
  EXPECT_EQ(a.teacache_threshold, b.teacache_threshold);
  EXPECT_EQ(a.magcache_threshold, b.magcache_threshold);
  EXPECT_EQ(a.magcache_max_skips, b.magcache_max_skips);
  EXPECT_EQ(a.magcache_retention, b.magcache_retention);
  EXPECT_EQ(a.variant, b.variant);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

int lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

class JobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("framesmith_jobs_test_" + std::string(info->name()) + "_" +
                                        std::to_string(std::random_device{}()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    quiet_ffmpeg_logging();
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_ / "ro", fs::perms::owner_all, ec);
    fs::remove_all(dir_);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // run_cli in this process; returns the exit code.
  int cli(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return run_cli(args, out_, err_);
  }

  fs::path dir_;
  std::ostringstream out_, err_;
};

TEST_F(JobsTest, DefaultJobFolderIsBesideTheVideo) {
  EXPECT_EQ(default_job_dir("/a/b/clip.mp4"), "/a/b/clip.job");
  EXPECT_EQ(default_job_dir("/a/b/clip.v2.mp4"), "/a/b/clip.v2.job");
}

TEST_F(JobsTest, FolderFilesAndFramePackNames) {
  const GenerationRequest req = request();
  JobOutput out(file("out/clip.mp4"), 20, req, file("out/clip.job"));
  EXPECT_TRUE(fs::is_directory(file("out/clip.job")));
  EXPECT_TRUE(fs::exists(file("out/clip.json")));
  const SavedOutput saved = read_saved_output(file("out/clip.job"));
  EXPECT_EQ(saved.video_path, fs::absolute(file("out/clip.mp4")).string());
  EXPECT_EQ(saved.crf, 20);

  out.write_input_image(make_frames(40, 24, 1));
  EXPECT_TRUE(fs::exists(file("out/clip.input.png")));
  EXPECT_TRUE(fs::exists(file("out/clip.job/input.png")));

  out.write_partial(make_frames(32, 32, 5), 2);
  out.write_partial(make_frames(32, 32, 13), 5);
  EXPECT_EQ(out.last_partial(), file("out/clip.job/clip_5.mp4"));
  for (const auto& [name, frames] :
       {std::pair<std::string, int>{"clip_2.mp4", 5}, {"clip_5.mp4", 13}}) {
    VideoReader r;
    r.open(file("out/clip.job/" + name));
    EXPECT_EQ(r.read_all().count, frames) << name;
  }
  EXPECT_FALSE(fs::exists(file("out/clip.mp4")));  // the final name only ever holds the end
  out.write_final(make_frames(32, 32, 13));
  VideoReader r;
  r.open(file("out/clip.mp4"));
  EXPECT_EQ(r.read_all().count, 13);
  for (const auto& e : fs::recursive_directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
}

// Frames [first, first + count) of `video` as their own Frames.
Frames slice(const Frames& video, int first, int count) {
  Frames f;
  f.width = video.width;
  f.height = video.height;
  f.count = count;
  const std::size_t bytes = std::size_t(video.width) * video.height * 3;
  f.rgb.assign(video.rgb.begin() + std::ptrdiff_t(first * bytes),
               video.rgb.begin() + std::ptrdiff_t((first + count) * bytes));
  return f;
}

// A stale tail (the frames a later section would blend) differs from the final frames.
Frames stale(Frames f) {
  for (auto& b : f.rgb) b = std::uint8_t(255 - b);
  return f;
}

// The chunks of a 25-frame video made backwards (the original variant): tails of 5 at the
// front, each replaced by final frames.
std::vector<VideoChunk> backwards_chunks(const Frames& video) {
  std::vector<VideoChunk> chunks(3);
  for (int i = 0; i < 3; ++i) {
    chunks[i].section = i + 1;
    chunks[i].sections = 3;
    chunks[i].total_frames = video.count;
  }
  chunks[0].first_final_frame = 25;
  chunks[0].final_frames = slice(video, 20, 0);
  chunks[0].tail = stale(slice(video, 20, 5));
  chunks[0].first_tail_frame = 20;
  chunks[1].final_frames = slice(video, 12, 13);
  chunks[1].first_final_frame = 12;
  chunks[1].tail = stale(slice(video, 7, 5));
  chunks[1].first_tail_frame = 7;
  chunks[2].final_frames = slice(video, 0, 12);
  chunks[2].first_final_frame = 0;
  return chunks;
}

Frames decode(const std::string& path) {
  VideoReader r;
  r.open(path);
  return r.read_all();
}

// Each chunk's final frames become one segment, the tail another that the next chunk replaces,
// and the playlist lists them in video order; the final MP4 joins the segments without
// re-encoding and shows, at CRF 0, the very pictures one encode of the whole video shows.
TEST_F(JobsTest, ChunksBecomeSegmentsJoinedIntoTheVideo) {
  const Frames video = make_frames(32, 24, 25, 3);
  JobOutput out(file("clip.mp4"), 0, request(), file("clip.job"));
  const std::vector<VideoChunk> chunks = backwards_chunks(video);
  EXPECT_EQ(out.write_chunk(chunks[0]), "");  // no final frames yet: no segment of them
  EXPECT_EQ(out.write_chunk(chunks[1]), file("clip.job/segments/final_00000012.mp4"));
  EXPECT_EQ(out.last_partial(), file("clip.job/video-so-far.ffconcat"));
  EXPECT_EQ(read_file(file("clip.job/video-so-far.ffconcat")),
            "ffconcat version 1.0\nfile 'segments/tail_00000007.mp4'\n"
            "file 'segments/final_00000012.mp4'\n");
  EXPECT_FALSE(fs::exists(file("clip.job/segments/tail_00000020.mp4")));  // replaced
  EXPECT_EQ(decode(file("clip.job/segments/final_00000012.mp4")).count, 13);
  out.write_chunk(chunks[2]);
  EXPECT_FALSE(fs::exists(file("clip.job/segments/tail_00000007.mp4")));
  EXPECT_EQ(out.segment_frames(), 25);
  out.write_final_from_segments();

  JobOutput whole(file("whole.mp4"), 0, request(), "");
  whole.write_final(video);
  const Frames joined = decode(file("clip.mp4")), reference = decode(file("whole.mp4"));
  EXPECT_EQ(joined.count, 25);
  EXPECT_TRUE(joined.rgb == reference.rgb) << "the joined video shows other pictures";
  GenerationRequest back;
  request_from_json(read_params_text(file("clip.mp4"), ""), back);
  expect_same_params(back, request());
}

// The studio plays a finished video from its job's segments: the playlist read back gives each
// segment's file and first frame in video order; a playlist that does not describe the video
// (a missing file, a foreign name, frames out of order) gives nothing, and the file is played.
TEST_F(JobsTest, ThePlaylistReadBackListsTheSegments) {
  const Frames video = make_frames(32, 24, 25, 3);
  {
    JobOutput out(file("clip.mp4"), 0, request(), file("clip.job"));
    for (const VideoChunk& c : backwards_chunks(video)) out.write_chunk(c);
    out.write_final_from_segments();
  }
  const std::vector<VideoSegment> segments = read_segment_playlist(file("clip.job"));
  ASSERT_EQ(segments.size(), 2u);  // the original's first section hands out only a tail
  EXPECT_EQ(segments[0].path, file("clip.job/segments/final_00000000.mp4"));
  EXPECT_EQ(segments[0].first_frame, 0);
  EXPECT_EQ(segments[1].first_frame, 12);
  EXPECT_EQ(decode(segments[1].path).count, 13);
  EXPECT_TRUE(read_segment_playlist(file("nothing.job")).empty());

  const std::string playlist = file("clip.job/video-so-far.ffconcat");
  const std::string good = read_file(playlist);
  for (const std::string& bad :
       {good + "file 'segments/final_00000003.mp4'\n",  // out of order (and missing)
        std::string("ffconcat version 1.0\nfile 'segments/other.mp4'\n"),
        std::string("ffconcat version 1.0\nfile '/etc/passwd'\n"),
        std::string("ffconcat version 1.0\nfile 'segments/final_00000012.mp4'\n"),  // not at 0
        std::string("ffconcat version 1.0\nduration 3\n")}) {
    std::ofstream(playlist, std::ios::trunc) << bad;
    EXPECT_TRUE(read_segment_playlist(file("clip.job")).empty()) << bad;
  }
}

// A job stopped after its second section: the final MP4 is what was made, the tail included.
TEST_F(JobsTest, StoppedJobKeepsTheSegmentsAndTheTail) {
  const Frames video = make_frames(32, 24, 25, 3);
  JobOutput out(file("clip.mp4"), 0, request(), file("clip.job"));
  const std::vector<VideoChunk> chunks = backwards_chunks(video);
  out.write_chunk(chunks[0]);
  out.write_chunk(chunks[1]);
  out.write_final_from_segments();
  EXPECT_EQ(decode(file("clip.mp4")).count, 18);
}

// A resumed job hands out every chunk again: a new JobOutput on the same job folder starts the
// segments afresh, so a segment the killed run left behind is not joined in.
TEST_F(JobsTest, ResumedJobReplacesTheKilledRunsSegments) {
  const Frames video = make_frames(32, 24, 25, 3);
  const std::vector<VideoChunk> chunks = backwards_chunks(video);
  {
    JobOutput killed(file("clip.mp4"), 0, request(), file("clip.job"));
    killed.write_chunk(chunks[0]);
    killed.write_chunk(chunks[1]);
  }
  fs::copy_file(file("clip.job/segments/final_00000012.mp4"),
                file("clip.job/segments/final_00000003.mp4"));  // a leftover of another run
  JobOutput resumed(file("clip.mp4"), 0, request(), file("clip.job"));
  for (const VideoChunk& c : chunks) resumed.write_chunk(c);
  EXPECT_FALSE(fs::exists(file("clip.job/segments/final_00000003.mp4")));
  resumed.write_final_from_segments();
  EXPECT_EQ(decode(file("clip.mp4")).count, 25);
}

// Segments whose codec headers differ (here: one from the MPEG-4 fallback encoder) cannot be
// joined by copying; they are decoded and encoded once more instead.
TEST_F(JobsTest, SegmentsOfDifferentEncodersAreJoinedByReencoding) {
  const Frames video = make_frames(32, 24, 10, 3);
  VideoWriter a, b;
  a.open(file("a.mp4"), 32, 24, 30, 0);
  for (int i = 0; i < 5; ++i) a.write_frame(video.frame(i), 32 * 3);
  a.finish();
  b.set_encoders({"mpeg4"});
  b.open(file("b.mp4"), 32, 24, 30, 0);
  for (int i = 5; i < 10; ++i) b.write_frame(video.frame(i), 32 * 3);
  b.finish();
  EXPECT_FALSE(concat_videos({file("a.mp4"), file("b.mp4")}, file("ab.mp4"), {}));
  EXPECT_FALSE(fs::exists(file("ab.mp4")));
  EXPECT_TRUE(concat_videos({file("a.mp4"), file("a.mp4")}, file("aa.mp4"), {}));
  EXPECT_EQ(decode(file("aa.mp4")).count, 10);
}

TEST_F(JobsTest, ParametersComeBackFromSidecarAndVideo) {
  const GenerationRequest req = request();
  JobOutput out(file("p.mp4"), 16, req, "");
  out.write_final(make_frames(16, 16, 3));
  for (const std::string& path : {file("p.json"), file("p.mp4")}) {
    GenerationRequest back;
    request_from_json(read_params_text(path, read_file(path)), back);
    expect_same_params(back, req);
  }
  // A video made elsewhere has none.
  VideoWriter w;
  w.open(file("plain.mp4"), 16, 16);
  for (int i = 0; i < 2; ++i) w.write_frame(make_frames(16, 16, 1).frame(0), 48);
  w.finish();
  EXPECT_THROW(read_params_text(file("plain.mp4"), ""), Error);
}

TEST_F(JobsTest, UnwritableFoldersAreReportedBeforeWork) {
  std::ofstream(file("a_file")) << "not a folder";
  // Below a regular file nothing can be made, whoever runs the test (root included).
  try {
    JobOutput out(file("a_file/sub/clip.mp4"), 16, request(), file("job"));
    ADD_FAILURE() << "no error for an output folder below a file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file("a_file/sub")), std::string::npos) << e.what();
  }
  try {
    JobOutput out(file("clip.mp4"), 16, request(), file("a_file/job"));
    ADD_FAILURE() << "no error for a job folder below a file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file("a_file/job")), std::string::npos) << e.what();
  }
#ifdef __linux__
  if (::geteuid() != 0) {  // root writes into read-only folders anyway
    fs::create_directories(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(JobOutput(file("ro/clip.mp4"), 16, request(), ""), Error);
  }
#endif
}

#ifdef __linux__
// Outputs are renamed into place, and a rename replaces anything: so a path that exists must be a
// regular file. A device, a FIFO, a symlink or a folder at any output path is refused before a
// file is made, and is still what it was afterwards.
TEST_F(JobsTest, SpecialFilesAtAnOutputPathAreRefusedBeforeWork) {
  ASSERT_EQ(::mkfifo(file("fifo.mp4").c_str(), 0600), 0);
  std::ofstream(file("real.mp4")) << "an earlier video";
  fs::create_symlink(file("real.mp4"), file("link.mp4"));
  fs::create_directories(dir_ / "folder.mp4");
  fs::create_directories(dir_ / "side");
  ASSERT_EQ(::mkfifo(file("side/clip.json").c_str(), 0600), 0);  // the sidecar's path
  std::ofstream(file("not_a_folder.job")) << "x";
  struct Case {
    std::string video, job, expect;
  };
  const std::vector<Case> cases = {
      {"/dev/null", "", "is a device"},  // what replaced /dev/null when run as root
      {file("fifo.mp4"), file("fifo.job"), "is a FIFO"},
      {file("link.mp4"), file("link.job"), "is a symbolic link"},
      {file("folder.mp4"), file("folder.job"), "is a folder"},
      {file("side/clip.mp4"), file("side/clip.job"), "is a FIFO"},
      {file("new.mp4"), file("not_a_folder.job"), "is not a folder"},
  };
  for (const Case& c : cases) {
    try {
      JobOutput out(c.video, 16, request(), c.job);
      ADD_FAILURE() << "no error for " << c.video;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
    if (!c.job.empty() && c.job != file("not_a_folder.job")) {
      EXPECT_FALSE(fs::exists(c.job)) << c.job;
    }
  }
  EXPECT_FALSE(fs::exists("/dev/null.json"));
  EXPECT_FALSE(fs::exists("/dev/null.job"));
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_TRUE(fs::is_fifo(file("fifo.mp4")));
  EXPECT_TRUE(fs::is_symlink(file("link.mp4")));
  EXPECT_TRUE(fs::is_fifo(file("side/clip.json")));
  EXPECT_FALSE(fs::exists(file("fifo.json")));
  EXPECT_FALSE(fs::exists(file("new.json")));
  std::ifstream real(file("real.mp4"));
  std::string text((std::istreambuf_iterator<char>(real)), {});
  EXPECT_EQ(text, "an earlier video");
}

// Two runs on one --out: the second is refused with the holder's pid and writes nothing (it
// used to overwrite the sidecar and job.json while the first run's video won). A holder that was
// killed leaves no stale lock. One process may lock a folder twice (front end, then engine).
TEST_F(JobsTest, OneJobFolderOneWriter) {
  const std::string job = file("clip.job");
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c = 0;
    try {
      new JobFolderLock(job);  // held until the child exits (or is killed)
      c = 1;
    } catch (...) {
    }
    (void)!::write(ready[1], &c, 1);
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 1) << "the child could not lock " << job;

  GenerationRequest req = request();
  req.seed = 2;
  try {
    JobOutput out(file("clip.mp4"), 16, req, job);
    ADD_FAILURE() << "a second writer was let in";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by process " + std::to_string(child)),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(file("clip.json"))) << "the refused run wrote its sidecar";
  EXPECT_FALSE(fs::exists(job + "/output.json")) << "the refused run wrote output.json";

  // The holder dies without unlocking: the folder is free at once.
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  {
    JobOutput out(file("clip.mp4"), 16, req, job);
    JobFolderLock again(job);  // the engine's lock inside the same process
    EXPECT_TRUE(fs::exists(file("clip.json")));
  }
  ::close(ready[0]);
  ::close(ready[1]);
  ::close(release[0]);
  ::close(release[1]);
}

TEST_F(JobsTest, CliRefusesAFolderAsOutBeforeGenerating) {
  const Frames img = make_frames(64, 48, 1);
  write_png(img.frame(0), 64, 48, 64 * 3, file("in.png"));
  fs::create_directories(dir_ / "videos");
  const int rc = cli({"generate", "--model", file("no-model"), "--image", file("in.png"),
                      "--prompt", "x", "--out", file("videos"), "--quiet"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(lines(err_.str()), 1) << err_.str();
  EXPECT_NE(err_.str().find("is a folder"), std::string::npos) << err_.str();
  EXPECT_FALSE(fs::exists(file("videos.job")));
  EXPECT_FALSE(fs::exists(file("videos.json")));
}
#endif

// Seeds at the edges of the 64-bit range survive the round trip generate -> saved parameters ->
// generate: the second video is identical (the old parser stored -1 as 2^64 - 1 and rounded
// large seeds through a double).
TEST_F(JobsTest, EdgeSeedsRoundTripToTheSameVideo) {
  const std::string model = file("tiny");
  make_tiny_model(model, 0);
  const std::string image =
      (fs::path(FRAMESMITH_TEST_DATA_DIR).parent_path().parent_path() / "resources/demo/start.png")
          .string();
  // Lossless (--crf 0): x264 does not encode the same frames to the same bytes twice here, but
  // lossless videos of equal frames decode to equal frames.
  const std::vector<std::string> small = {"--resolution", "64", "--seconds", "0.5", "--steps", "1",
                                          "--window",     "2",  "--crf",     "0",   "--quiet"};
  for (const std::string seed : {"18446744073709551615", "9007199254740993", "-1"}) {
    const std::string first = file("s" + std::to_string(seed.size()) + "a.mp4");
    const std::string again = file("s" + std::to_string(seed.size()) + "b.mp4");
    std::vector<std::string> args = {"generate", "--model", model, "--image", image, "--prompt",
                                     "a cat",    "--seed",  seed,  "--out",   first};
    args.insert(args.end(), small.begin(), small.end());
    ASSERT_EQ(cli(args), 0) << err_.str();
    std::ifstream sidecar(file("s" + std::to_string(seed.size()) + "a.json"));
    const std::string params((std::istreambuf_iterator<char>(sidecar)), {});
    if (seed != "-1") {
      EXPECT_NE(params.find("\"seed\": " + seed), std::string::npos) << params;
    } else {
      EXPECT_EQ(params.find("\"seed\": 18446744073709551615"), std::string::npos) << params;
    }
    ASSERT_EQ(cli({"generate", "--params", file("s" + std::to_string(seed.size()) + "a.json"),
                   "--image", image, "--out", again, "--crf", "0", "--quiet"}),
              0)
        << err_.str();
    VideoReader a, b;
    a.open(first);
    b.open(again);
    const Frames fa = a.read_all(), fb = b.read_all();
    ASSERT_EQ(fa.count, fb.count);
    std::size_t differ = 0;
    int worst = 0;
    for (std::size_t i = 0; i < fa.rgb.size() && i < fb.rgb.size(); ++i) {
      const int d = std::abs(int(fa.rgb[i]) - int(fb.rgb[i]));
      differ += d != 0;
      worst = std::max(worst, d);
    }
    EXPECT_EQ(differ, 0u) << "seed " << seed << ": the saved parameters made another video ("
                          << differ << " bytes differ, by up to " << worst << ")";
  }
}

TEST_F(JobsTest, CliReportsAnUnwritableFolderInOneLine) {
  const Frames img = make_frames(64, 48, 1);
  write_png(img.frame(0), 64, 48, 64 * 3, file("in.png"));
  std::ofstream(file("a_file")) << "x";
  const int rc =
      cli({"generate", "--model", file("no-model"), "--image", file("in.png"), "--conditioning",
           file("c.safetensors"), "--out", file("a_file/clip.mp4"), "--quiet"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(lines(err_.str()), 1) << err_.str();
  EXPECT_EQ(err_.str().rfind("error: ", 0), 0u) << err_.str();
  EXPECT_NE(err_.str().find("a_file"), std::string::npos) << err_.str();
  std::cout << "[ info ] " << err_.str();

  EXPECT_EQ(cli({"resume", file("nothing-here")}), 1);
  EXPECT_EQ(lines(err_.str()), 1) << err_.str();
  EXPECT_NE(err_.str().find("no job here"), std::string::npos) << err_.str();
}

TEST_F(JobsTest, AnUnfinishedJobIsNotOverwritten) {
  // A job folder with 1 of 3 sections saved (job.json as the engine writes it).
  GenerationRequest req = request();
  req.seconds = 0.8;
  req.latent_window = 2;
  fs::create_directories(dir_ / "clip.job");
  std::ofstream(job_params_path(file("clip.job"))) << request_to_json(req);
  {
    // A whole (if tiny) safetensors file with "latents": a cut-short one does not count as saved.
    const std::string header = R"({"latents":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    std::ofstream f(job_section_path(file("clip.job"), 0), std::ios::binary);
    const std::uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header;
    f.write("\0\0\0\0", 4);
  }
  const JobFolderInfo info = inspect_job_folder(file("clip.job"));
  EXPECT_EQ(info.sections_done, 1);
  EXPECT_EQ(info.sections_total, 3);

  const Frames img = make_frames(64, 48, 1);
  write_png(img.frame(0), 64, 48, 64 * 3, file("in.png"));
  EXPECT_EQ(cli({"generate", "--model", file("m"), "--image", file("in.png"), "--prompt", "x",
                 "--out", file("clip.mp4"), "--quiet"}),
            1);
  EXPECT_EQ(lines(err_.str()), 1) << err_.str();
  EXPECT_NE(err_.str().find("framesmith-cli resume " + file("clip.job")), std::string::npos)
      << err_.str();
  EXPECT_TRUE(fs::exists(job_section_path(file("clip.job"), 0)));
}

#ifdef __linux__
// A file size limit makes writes fail with EFBIG as a full disk fails with ENOSPC. The videos
// already written stay whole and readable; the failed one leaves nothing under its name.
TEST_F(JobsTest, FileSizeLimitKeepsWhatWasWritten) {
  JobOutput out(file("clip.mp4"), 16, request(), file("clip.job"));
  out.write_partial(make_frames(64, 64, 5), 2);
  const auto first_size = fs::file_size(file("clip.job/clip_2.mp4"));

  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = std::max<rlim_t>(first_size * 2, 32 * 1024);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string partial_error, final_error;
  try {
    out.write_partial(noise_frames(128, 128, 13), 5);
  } catch (const Error& e) {
    partial_error = e.what();
  }
  try {
    out.write_final(noise_frames(128, 128, 13));
  } catch (const Error& e) {
    final_error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  std::cout << "[ info ] limit " << small.rlim_cur << " bytes: " << partial_error << "\n";
  ASSERT_FALSE(partial_error.empty()) << "no error past the file size limit";
  EXPECT_NE(partial_error.find(file("clip.job/clip_5.mp4")), std::string::npos) << partial_error;
  EXPECT_NE(final_error.find(file("clip.mp4")), std::string::npos) << final_error;
  EXPECT_FALSE(fs::exists(file("clip.job/clip_5.mp4")));
  EXPECT_FALSE(fs::exists(file("clip.job/clip_5.mp4.partial")));
  EXPECT_FALSE(fs::exists(file("clip.mp4")));
  EXPECT_EQ(out.last_partial(), file("clip.job/clip_2.mp4"));
  EXPECT_EQ(fs::file_size(file("clip.job/clip_2.mp4")), first_size);
  VideoReader r;
  r.open(file("clip.job/clip_2.mp4"));
  EXPECT_EQ(r.read_all().count, 5);
}
#endif

TEST_F(JobsTest, ExportFramesFromTheCommandLine) {
  const Frames src = make_frames(48, 32, 6);
  VideoWriter w;
  w.open(file("v.mp4"), src.width, src.height);
  for (int i = 0; i < src.count; ++i) w.write_frame(src.frame(i), src.width * 3);
  w.finish();
  VideoReader r;
  r.open(file("v.mp4"));
  const Frames decoded = r.read_all();

  ASSERT_EQ(cli({"export-frames", file("v.mp4"), file("all")}), 0) << err_.str();
  for (int i = 0; i < 6; ++i) {
    const std::string png = file("all/v_0000" + std::to_string(i) + ".png");
    QImage img(QString::fromStdString(png));
    ASSERT_FALSE(img.isNull()) << png;
    img = img.convertToFormat(QImage::Format_RGB888);
    ASSERT_EQ(img.width(), 48);
    for (int y = 0; y < 32; ++y)
      ASSERT_EQ(0, std::memcmp(img.constScanLine(y), decoded.frame(i) + y * 48 * 3, 48 * 3))
          << png << " row " << y;
  }
  EXPECT_FALSE(fs::exists(file("all/v_00006.png")));

  ASSERT_EQ(cli({"export-frames", file("v.mp4"), file("one"), "--frame", "4"}), 0) << err_.str();
  EXPECT_TRUE(fs::exists(file("one/v_00004.png")));
  EXPECT_EQ(std::distance(fs::directory_iterator(file("one")), fs::directory_iterator()), 1);

  EXPECT_EQ(cli({"export-frames", file("v.mp4"), file("one"), "--frame", "6"}), 1);
  EXPECT_EQ(lines(err_.str()), 1) << err_.str();
  EXPECT_NE(err_.str().find("no frame 6"), std::string::npos) << err_.str();
  EXPECT_EQ(cli({"export-frames", file("missing.mp4"), file("x")}), 1);
  EXPECT_EQ(lines(err_.str()), 1) << err_.str();
}

}  // namespace
