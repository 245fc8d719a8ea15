// Durable jobs end to end, through the framesmith-cli program on the tiny model: a job killed
// (SIGKILL) after its first section and resumed gives the uninterrupted run's latents and video;
// a job stopped by a full disk (RLIMIT_FSIZE) reports it in one line, keeps what it made and
// resumes; parameters loaded back from a video reproduce it. Needs the built framesmith-cli
// (skipped when it is missing).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "framesmith/engine_cli.h"
#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "png_export.h"
#include "video_reader.h"

namespace fs = std::filesystem;
using namespace framesmith;

namespace {

const std::string kCli = std::string(FRAMESMITH_BINARY_DIR) + "/app/framesmith-cli";

// --- a minimal safetensors writer/reader (the engine's io/ is private to it) -----------------

struct RawTensor {
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
};

void write_safetensors(const std::string& path, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  const std::uint64_t n = h.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << data;
}

std::vector<float> read_f32(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string h(n, ' ');
  in.read(h.data(), static_cast<std::streamsize>(n));
  const auto j = nlohmann::json::parse(h);
  if (!j.contains(name) || j[name]["dtype"] != "F32") return {};
  const std::uint64_t b = j[name]["data_offsets"][0], e = j[name]["data_offsets"][1];
  std::vector<float> v((e - b) / 4);
  in.seekg(static_cast<std::streamoff>(8 + n + b));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(e - b));
  return v;
}

RawTensor f32(std::vector<std::int64_t> shape, std::uint32_t seed) {
  std::int64_t count = 1;
  for (auto s : shape) count *= s;
  std::vector<float> v(static_cast<std::size_t>(count));
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto& x : v) x = d(g);
  return {"F32", shape, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4)};
}

RawTensor i64_ones(std::vector<std::int64_t> shape) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(shape[0] * shape[1]), 1);
  return {"I64", shape, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 8)};
}

// --- child processes ----------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts framesmith-cli with `args`; stdout/stderr go to files. `fsize_limit` > 0 limits the
// size of every file it writes (SIGXFSZ ignored: writes then fail with EFBIG, as on a full disk).
Child start(const std::vector<std::string>& args, const std::string& log_stem,
            rlim_t fsize_limit = 0) {
  Child c;
  c.out_path = log_stem + ".out";
  c.err_path = log_stem + ".err";
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(kCli.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  c.pid = ::fork();
  if (c.pid == 0) {
    const int o = ::open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    if (fsize_limit > 0) {
      std::signal(SIGXFSZ, SIG_IGN);  // kept across exec
      rlimit r{fsize_limit, fsize_limit};
      ::setrlimit(RLIMIT_FSIZE, &r);
    }
    ::execv(kCli.c_str(), argv.data());
    ::_exit(127);
  }
  return c;
}

int wait_exit(const Child& c) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

struct FrameDiff {
  int max_abs = 255;
  double psnr = 0;  // dB; 99 when equal
};

// Decoded frames of two videos. The runs encode losslessly (--crf 0): x264's choices differ from
// one encode of the same frames to the next (it is not bit-reproducible here), but lossless
// videos of equal frames decode to equal frames whatever it chose.
FrameDiff frame_diff(const std::string& a, const std::string& b) {
  app::VideoReader ra, rb;
  ra.open(a);
  rb.open(b);
  const Frames fa = ra.read_all(), fb = rb.read_all();
  EXPECT_EQ(fa.count, fb.count) << a << " vs " << b;
  FrameDiff d;
  if (fa.rgb.size() != fb.rgb.size() || fa.rgb.empty()) return d;
  d.max_abs = 0;
  double se = 0;
  for (std::size_t i = 0; i < fa.rgb.size(); ++i) {
    const int e = std::abs(fa.rgb[i] - fb.rgb[i]);
    d.max_abs = std::max(d.max_abs, e);
    se += double(e) * e;
  }
  const double mse = se / double(fa.rgb.size());
  d.psnr = mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
  return d;
}

// The segments a job folder's playlist lists, in its order.
std::vector<std::string> playlist_segments(const std::string& job) {
  std::ifstream in(job + "/video-so-far.ffconcat");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("file '", 0) == 0) out.push_back(job + "/" + line.substr(6, line.size() - 7));
  return out;
}

// Every frame of the playlist's segments, one after the other.
Frames playlist_frames(const std::string& job) {
  Frames all;
  for (const std::string& segment : playlist_segments(job)) {
    app::VideoReader r;
    r.open(segment);
    const Frames f = r.read_all();
    all.width = f.width;
    all.height = f.height;
    all.count += f.count;
    all.rgb.insert(all.rgb.end(), f.rgb.begin(), f.rgb.end());
  }
  return all;
}

// Largest |a - b| over every saved section's latents of two job folders.
double max_latent_diff(const std::string& job_a, const std::string& job_b, int sections) {
  double m = 0;
  for (int s = 0; s < sections; ++s) {
    const auto a = read_f32(job_section_path(job_a, s), "latents");
    const auto b = read_f32(job_section_path(job_b, s), "latents");
    EXPECT_FALSE(a.empty()) << job_section_path(job_a, s);
    EXPECT_EQ(a.size(), b.size()) << "section " << s;
    if (a.size() != b.size() || a.empty()) return 1e30;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  }
  return m;
}

// The job: resolution 128 (a 144 x 112 bucket for the 80 x 64 start image), window 2, 0.8 s:
// round(0.8 * 30 / (2 * 4)) = 3 sections, 4 steps each.
constexpr int kSections = 3;
constexpr int kWindow = 2;

class ResumeE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kCli)) return;
    root_ = fs::temp_directory_path() /
            ("framesmith_resume_e2e_" + std::to_string(std::random_device{}()));
    fs::create_directories(root_);
    model_ = (root_ / "tiny").string();
    make_tiny_model(model_, 1);
    // Conditioning of the tiny transformer's widths (read from its config, not assumed).
    std::ifstream cfg_in(model_ + "/transformer/config.json");
    const auto cfg = nlohmann::json::parse(cfg_in);
    const std::int64_t text = cfg["text_embed_dim"], pooled = cfg["pooled_projection_dim"],
                       image = cfg["image_proj_dim"];
    cond_ = (root_ / "cond.safetensors").string();
    write_safetensors(cond_, {{"llama_vec", f32({1, 6, text}, 1)},
                              {"llama_attention_mask", i64_ones({1, 6})},
                              {"clip_l_pooler", f32({1, pooled}, 2)},
                              {"image_encoder_last_hidden_state", f32({1, 4, image}, 3)}});
    image_ = (root_ / "start.png").string();
    std::vector<std::uint8_t> rgb(80 * 64 * 3);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 80; ++x)
        for (int k = 0; k < 3; ++k)
          rgb[(y * 80 + x) * 3 + k] = std::uint8_t((x * 3 + y * (k + 1) * 2 + k * 70) % 256);
    app::write_png(rgb.data(), 80, 64, 80 * 3, image_);

    // The reference: one uninterrupted run.
    const auto t0 = std::chrono::steady_clock::now();
    const Child c = start(generate_args("a"), log("a"));
    reference_rc_ = wait_exit(c);
    reference_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    reference_err_ = slurp(c.err_path);
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) fs::remove_all(root_);
  }

  void SetUp() override {
    if (!fs::exists(kCli))
      GTEST_SKIP() << kCli << " is not built (build the framesmith-cli target first)";
    ASSERT_EQ(reference_rc_, 0) << "the uninterrupted run failed: " << reference_err_;
  }

  static std::string path(const std::string& name) { return (root_ / name).string(); }
  static std::string log(const std::string& name) { return path("log_" + name); }
  static std::string video(const std::string& run) { return path(run + "/" + run + ".mp4"); }
  static std::string job(const std::string& run) { return path(run + "/" + run + ".job"); }

  static std::vector<std::string> generate_args(const std::string& run) {
    return {"generate",     "--model",  model_,
            "--image",      image_,     "--conditioning",
            cond_,          "--out",    video(run),
            "--resolution", "128",      "--seconds",
            "0.8",          "--window", std::to_string(kWindow),
            "--steps",      "4",        "--seed",
            "31337",        "--crf",    "0",
            "--quiet"};
  }

  // Kills a fresh run of `run` once section `section` (0-based) is saved; returns the sections
  // its job folder kept.
  static int kill_after_section(const std::string& run, int section) {
    const Child c = start(generate_args(run), log(run));
    const std::string saved = job_section_path(job(run), section);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (!fs::exists(saved) && std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(c.pid, nullptr, WNOHANG) == c.pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(::kill(c.pid, SIGKILL), 0)
        << "the job ended before section " << section + 1 << " was saved: " << slurp(c.err_path);
    EXPECT_EQ(wait_exit(c), 128 + SIGKILL);
    return inspect_job_folder(job(run)).sections_done;
  }

  static fs::path root_;
  static std::string model_, cond_, image_, reference_err_;
  static int reference_rc_;
  static double reference_s_;
};

fs::path ResumeE2E::root_;
std::string ResumeE2E::model_, ResumeE2E::cond_, ResumeE2E::image_, ResumeE2E::reference_err_;
int ResumeE2E::reference_rc_ = -1;
double ResumeE2E::reference_s_ = 0;

TEST_F(ResumeE2E, UninterruptedRunKeepsItsJobFolder) {
  std::cout << "[ info ] uninterrupted run: " << reference_s_ << " s\n";
  const JobFolderInfo info = inspect_job_folder(job("a"));
  EXPECT_TRUE(info.finished());
  EXPECT_EQ(info.sections_done, kSections);
  for (const char* f : {"job.json", "start_image.safetensors", "conditioning.safetensors",
                        "start_latent.safetensors", "input.png", "output.json"})
    EXPECT_TRUE(fs::exists(job("a") + "/" + f)) << f;
  // The video so far as segments, each written once when its frames became final, listed in
  // video order by the playlist; the final video joins them, so it shows their very frames.
  const std::vector<std::string> segments = playlist_segments(job("a"));
  EXPECT_EQ(segments.size(), std::size_t(kSections - 1));  // the original's first: a tail only
  for (const std::string& segment : segments) EXPECT_TRUE(fs::exists(segment)) << segment;
  app::VideoReader r;
  r.open(video("a"));
  const Frames v = r.read_all();
  EXPECT_GT(v.count, 0);
  EXPECT_EQ(v.count, r.frame_count());
  const Frames joined = playlist_frames(job("a"));
  std::cout << "[ info ] " << v.count << " frames " << v.width << "x" << v.height << " from "
            << segments.size() << " segments\n";
  EXPECT_EQ(joined.count, v.count);
  EXPECT_TRUE(joined.rgb == v.rgb) << "the final video differs from its segments";
  EXPECT_TRUE(fs::exists(path("a/a.json")));
  EXPECT_TRUE(fs::exists(path("a/a.input.png")));
}

TEST_F(ResumeE2E, KilledJobResumesToTheSameVideo) {
  const Child c = start(generate_args("b"), log("b"));
  const std::string first = job_section_path(job("b"), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!fs::exists(first) && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(c.pid, nullptr, WNOHANG) == c.pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(::kill(c.pid, SIGKILL), 0)
      << "the job ended before its first section was saved: " << slurp(c.err_path);
  EXPECT_EQ(wait_exit(c), 128 + SIGKILL);
  const JobFolderInfo killed = inspect_job_folder(job("b"));
  std::cout << "[ info ] killed with " << killed.sections_done << " of " << killed.sections_total
            << " sections saved\n";
  ASSERT_GE(killed.sections_done, 1);
  EXPECT_LT(killed.sections_done, kSections)
      << "the job finished before the kill: nothing to resume";
  EXPECT_FALSE(fs::exists(video("b")));

  const auto t0 = std::chrono::steady_clock::now();
  const Child r = start({"resume", job("b"), "--quiet"}, log("b_resume"));
  ASSERT_EQ(wait_exit(r), 0) << slurp(r.err_path);
  std::cout << "[ info ] resume: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s; " << slurp(r.out_path);
  EXPECT_NE(slurp(r.out_path).find("resumed"), std::string::npos);
  EXPECT_TRUE(inspect_job_folder(job("b")).finished());
  const double dl = max_latent_diff(job("a"), job("b"), kSections);
  const FrameDiff df = frame_diff(video("a"), video("b"));
  std::cout << "[ info ] resumed vs uninterrupted: latents max |diff| " << dl
            << ", decoded frames max |diff| " << df.max_abs << " (PSNR " << df.psnr << " dB)\n";
  EXPECT_LE(dl, 1e-6);
  EXPECT_EQ(df.max_abs, 0);
}

// A kill after any section: the job folder's playlist plays what was final, and a resume gives
// the uninterrupted run's video (the resume hands out every section again, rebuilding the
// segments).
TEST_F(ResumeE2E, KilledAfterTheSecondSectionResumesToTheSameVideo) {
  const int kept = kill_after_section("k", 1);
  std::cout << "[ info ] killed with " << kept << " of " << kSections << " sections saved\n";
  ASSERT_GE(kept, 2);
  if (kept == kSections) GTEST_SKIP() << "the job finished before the kill: nothing to resume";
  for (const std::string& segment : playlist_segments(job("k")))
    EXPECT_TRUE(fs::exists(segment)) << segment;
  EXPECT_FALSE(fs::exists(video("k")));
  const Child r = start({"resume", job("k"), "--quiet"}, log("k_resume"));
  ASSERT_EQ(wait_exit(r), 0) << slurp(r.err_path);
  EXPECT_LE(max_latent_diff(job("a"), job("k"), kSections), 1e-6);
  EXPECT_EQ(frame_diff(video("a"), video("k")).max_abs, 0);
}

// Ctrl-C: the job stops between two steps, says so in one line, keeps its finished sections.
TEST_F(ResumeE2E, InterruptedJobKeepsItsSectionsAndResumes) {
  // Model and conditioning given relative to the working folder (the job keeps them absolute).
  std::vector<std::string> args = generate_args("i");
  for (auto& a : args) {
    if (a == model_) a = "tiny";
    if (a == cond_) a = "cond.safetensors";
  }
  const std::string cwd = fs::current_path().string();
  fs::current_path(root_);
  const Child c = start(args, log("i"));
  fs::current_path(cwd);
  const std::string first = job_section_path(job("i"), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!fs::exists(first) && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(c.pid, nullptr, WNOHANG) == c.pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(::kill(c.pid, SIGINT), 0) << slurp(c.err_path);
  EXPECT_EQ(wait_exit(c), 130);
  const std::string err = slurp(c.err_path);
  std::cout << "[ info ] " << err;
  EXPECT_EQ(count_lines(err), 1) << err;
  EXPECT_NE(err.find("stopped by the user"), std::string::npos) << err;
  EXPECT_NE(err.find("framesmith-cli resume " + job("i")), std::string::npos) << err;
  const int kept = inspect_job_folder(job("i")).sections_done;
  EXPECT_GE(kept, 1);
  EXPECT_NE(err.find("kept " + std::to_string(kept) + " of 3 sections"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(video("i")));

  // Resumed from another working folder.
  fs::current_path(fs::temp_directory_path());
  const Child r = start({"resume", job("i"), "--quiet"}, log("i_resume"));
  fs::current_path(cwd);
  ASSERT_EQ(wait_exit(r), 0) << slurp(r.err_path);
  EXPECT_LE(max_latent_diff(job("a"), job("i"), kSections), 1e-6);
  EXPECT_EQ(frame_diff(video("a"), video("i")).max_abs, 0);
}

TEST_F(ResumeE2E, FullDiskIsOneLineAndTheJobResumes) {
  // A limit above every other file of the job folder but below the largest segment of run a
  // (lossless video of the tiny model's noise is large), so that writing a segment fails.
  const auto size = [](const std::string& p) { return static_cast<rlim_t>(fs::file_size(p)); };
  rlim_t others = 0, largest_segment = 0;
  for (const auto& e : fs::directory_iterator(job("a")))
    if (e.is_regular_file()) others = std::max(others, size(e.path().string()));
  for (const std::string& segment : playlist_segments(job("a")))
    largest_segment = std::max(largest_segment, size(segment));
  const rlim_t limit = others + 64;
  if (limit >= largest_segment)
    GTEST_SKIP() << "the largest segment (" << largest_segment << " bytes) is not larger than "
                 << "the other files (" << others << ")";
  const Child c = start(generate_args("d"), log("d"), limit);
  EXPECT_EQ(wait_exit(c), 1);
  const std::string err = slurp(c.err_path);
  std::cout << "[ info ] file size limit " << limit << " bytes: " << err;
  EXPECT_EQ(count_lines(err), 1) << err;
  EXPECT_EQ(err.rfind("error: ", 0), 0u) << err;
  EXPECT_NE(err.find(job("d") + "/segments/"), std::string::npos) << err;
  EXPECT_NE(err.find("framesmith-cli resume " + job("d")), std::string::npos) << err;
  // What was made is kept: the sections' latents are saved before their video.
  EXPECT_GE(inspect_job_folder(job("d")).sections_done, 1);
  EXPECT_FALSE(fs::exists(video("d")));

  const Child r = start({"resume", job("d"), "--quiet"}, log("d_resume"));
  ASSERT_EQ(wait_exit(r), 0) << slurp(r.err_path);
  EXPECT_LE(max_latent_diff(job("a"), job("d"), kSections), 1e-6);
  EXPECT_EQ(frame_diff(video("a"), video("d")).max_abs, 0);
}

TEST_F(ResumeE2E, ParametersFromTheVideoReproduceIt) {
  // The CRF is an output setting, not a job parameter: lossless again for an exact comparison.
  const Child c = start({"generate", "--params", video("a"), "--image", image_, "--out", video("p"),
                         "--crf", "0", "--quiet"},
                        log("p"));
  ASSERT_EQ(wait_exit(c), 0) << slurp(c.err_path);
  EXPECT_LE(max_latent_diff(job("a"), job("p"), kSections), 1e-6);
  EXPECT_EQ(frame_diff(video("a"), video("p")).max_abs, 0);
}

TEST_F(ResumeE2E, UnwritableOutputIsOneLine) {
  std::ofstream(path("a_file")) << "x";
  const Child c = start({"generate", "--params", video("a"), "--image", image_, "--out",
                         path("a_file/x.mp4"), "--quiet"},
                        log("u"));
  EXPECT_EQ(wait_exit(c), 1);
  const std::string err = slurp(c.err_path);
  std::cout << "[ info ] " << err;
  EXPECT_EQ(count_lines(err), 1) << err;
  EXPECT_NE(err.find(path("a_file")), std::string::npos) << err;
}

}  // namespace
