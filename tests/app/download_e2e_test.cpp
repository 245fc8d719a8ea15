// `framesmith-cli download` end to end: the tiny model set served by the hub fixture on loopback
// as FramePack's three repositories, fetched into the hub cache and into a plain folder, found
// by the engine's model locator byte for byte, and run; a download killed (SIGKILL) mid-file
// resumes with Range; a gated repository and a dry run. Needs the built framesmith-cli.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "framesmith/engine_cli.h"
#include "framesmith/model_set.h"
#include "png_export.h"
#include "support/hub_server.h"

namespace fs = std::filesystem;
using namespace framesmith;
using framesmith::test::Fault;
using framesmith::test::HubServer;

namespace {

const std::string kCli = std::string(FRAMESMITH_BINARY_DIR) + "/app/framesmith-cli";
const char* kCommits[] = {"1111111111111111111111111111111111111111",
                          "2222222222222222222222222222222222222222",
                          "3333333333333333333333333333333333333333"};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

struct CliRun {
  int rc = -1;
  std::string out, err;
};

struct Child {
  pid_t pid = -1;
  std::string out_path, err_path;
};

Child start(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& stem) {
  Child c{-1, stem + ".out", stem + ".err"};
  std::vector<char*> argv{const_cast<char*>(kCli.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  c.pid = ::fork();
  if (c.pid == 0) {
    const int o = ::open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    for (const char* v : {"HF_TOKEN", "HF_HUB_CACHE", "http_proxy", "https_proxy", "all_proxy"})
      ::unsetenv(v);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execv(kCli.c_str(), argv.data());
    ::_exit(127);
  }
  return c;
}

CliRun finish(const Child& c) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  CliRun r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(c.out_path);
  r.err = slurp(c.err_path);
  return r;
}

// Which repository and path a component folder of the tiny model takes on the hub.
std::pair<int, std::string> hub_place(const std::string& folder, const std::string& file) {
  if (folder == "transformer") return {0, file};
  if (folder == "image_encoder" || folder == "feature_extractor") return {2, folder + "/" + file};
  return {1, folder + "/" + file};
}

class DownloadE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kCli)) return;
    root_ = fs::temp_directory_path() /
            ("framesmith_download_e2e_" + std::to_string(std::random_device{}()));
    fs::create_directories(root_);
    model_ = root_ / "tiny";
    make_tiny_model(model_.string(), 1);
  }
  static void TearDownTestSuite() {
    // FRAMESMITH_KEEP_TEST_DIRS=1 keeps the folders (and the programs' output) for a look.
    if (!root_.empty() && !std::getenv("FRAMESMITH_KEEP_TEST_DIRS")) fs::remove_all(root_);
  }

  void SetUp() override {
    if (!fs::exists(kCli)) GTEST_SKIP() << "framesmith-cli is not built";
    const char* ids[] = {"lllyasviel/FramePackI2V_HY", "hunyuanvideo-community/HunyuanVideo",
                         "lllyasviel/flux_redux_bfl"};
    std::vector<test::HubRepo> repos(3);
    for (int i = 0; i < 3; ++i) repos[i] = {ids[i], kCommits[i], {}, "", false};
    for (const auto& e : fs::recursive_directory_iterator(model_)) {
      if (!e.is_regular_file()) continue;
      const fs::path rel = fs::relative(e.path(), model_);
      const std::string folder = rel.begin()->string();
      const std::string file = fs::relative(e.path(), model_ / folder).string();
      if (folder == "tiny_config.json" || rel.string().find('/') == std::string::npos) continue;
      const auto [repo, path] = hub_place(folder, file);
      repos[repo].files.push_back(
          {path, slurp(e.path()), e.path().extension() == ".safetensors", 0});
    }
    // HunyuanVideo's own 25 GB transformer is in the repository, and must not be fetched.
    repos[1].files.push_back(
        {"transformer/diffusion_pytorch_model.safetensors", std::string(4096, 'x'), true, 0});
    repos[1].files.push_back({"README.md", "# HunyuanVideo\n", false, 0});
    for (auto& r : repos) server_.add_repo(r);
    dir_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
    env_ = {{"HF_ENDPOINT", server_.url()}, {"HF_HOME", (dir_ / "hf-home").string()}};
  }

  CliRun cli(const std::vector<std::string>& args) {
    return finish(start(args, env_, (dir_ / "cli").string()));
  }

  // Every file of the tiny model, compared with what the locator finds at `where`.
  void expect_same_model(const std::string& where) {
    const ModelSet set = locate_model_set(where);
    ASSERT_TRUE(set.missing.empty()) << where << ": " << set.missing.size() << " missing";
    for (const ComponentPath& c : set.found) {
      const fs::path src = model_ / folder_name(c.component);
      for (const auto& e : fs::directory_iterator(src))
        EXPECT_EQ(slurp(fs::path(c.path) / e.path().filename()), slurp(e.path()))
            << c.path << "/" << e.path().filename().string();
    }
  }

  static fs::path root_, model_;
  HubServer server_;
  fs::path dir_;
  std::map<std::string, std::string> env_;
};
fs::path DownloadE2E::root_, DownloadE2E::model_;

TEST_F(DownloadE2E, IntoTheHubCacheThenFoundAndRunWithModelHf) {
  const std::string cache = (dir_ / "hub").string();
  const CliRun r = cli({"download", "framepack", "--to", "hf:" + cache});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("lllyasviel/FramePackI2V_HY@main (commit 111111111111)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("use it with --model hf:" + cache), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("fetched"), std::string::npos) << r.err;  // plain lines: not a terminal
  EXPECT_EQ(r.err.find("\r"), std::string::npos);
  for (const auto& req : server_.requests())
    EXPECT_FALSE(req.target.find("HunyuanVideo/") != std::string::npos &&
                 req.target.find("/transformer/") != std::string::npos)
        << req.target;
  expect_same_model("hf:" + cache);
  EXPECT_EQ(slurp(fs::path(cache) / "models--lllyasviel--FramePackI2V_HY/refs/main"), kCommits[0]);

  // The downloaded set runs: one short job on it.
  std::vector<std::uint8_t> rgb(64 * 48 * 3, 128);
  const std::string image = (dir_ / "start.png").string();
  app::write_png(rgb.data(), 64, 48, 64 * 3, image);
  const CliRun g = cli({"generate", "--model", "hf:" + cache, "--image", image, "--prompt",
                        "a test", "--out", (dir_ / "out.mp4").string(), "--seconds", "0.3",
                        "--steps", "1", "--resolution", "64", "--window", "1"});
  EXPECT_EQ(g.rc, 0) << g.out << g.err;
  EXPECT_TRUE(fs::exists(dir_ / "out.mp4"));
}

TEST_F(DownloadE2E, PlainFolderAndASecondRunFetchesNothing) {
  const std::string to = (dir_ / "models").string();
  ASSERT_EQ(cli({"download", "framepack", "--to", to}).rc, 0);
  expect_same_model(to);
  server_.clear_log();
  const CliRun again = cli({"download", "framepack", "--to", to});
  EXPECT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.out.find("to fetch 0 B"), std::string::npos) << again.out;
  for (const auto& req : server_.requests())
    EXPECT_EQ(req.method == "GET" && req.target.find("/resolve/") != std::string::npos, false)
        << req.target;
}

TEST_F(DownloadE2E, KilledMidFileResumesWithRange) {
  const std::string cache = (dir_ / "hub").string();
  const std::string big = "diffusion_pytorch_model.safetensors";
  const std::uint64_t size = fs::file_size(model_ / "transformer" / big);
  server_.add_fault(Fault::slow(big, std::max<std::uint64_t>(size / 4, 4096)));
  const Child c =
      start({"download", "framepack", "--to", "hf:" + cache}, env_, (dir_ / "killed").string());
  // Wait until part of the transformer's weights is on disk, then kill the process outright.
  const fs::path blobs = fs::path(cache) / "models--lllyasviel--FramePackI2V_HY/blobs";
  bool partial_seen = false;
  for (int i = 0; i < 400 && !partial_seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (fs::exists(blobs))
      for (const auto& e : fs::directory_iterator(blobs))
        if (e.path().extension() == ".incomplete" && fs::file_size(e.path()) > 0)
          partial_seen = true;
  }
  ::kill(c.pid, SIGKILL);
  const CliRun killed = finish(c);
  ASSERT_TRUE(partial_seen) << killed.out << killed.err;
  EXPECT_EQ(killed.rc, 128 + SIGKILL);
  EXPECT_FALSE(fs::exists(fs::path(cache) / "models--lllyasviel--FramePackI2V_HY/refs/main"));

  const CliRun r = cli({"download", "framepack", "--to", "hf:" + cache});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("resumed at"), std::string::npos) << r.err;
  std::vector<test::LoggedRequest> gets;  // the transformer's, not the VAE's of the same name
  for (const auto& g : server_.gets_of(big))
    if (g.target.find("/cdn/lllyasviel/FramePackI2V_HY/") == 0) gets.push_back(g);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].headers.count("range"), 0u);
  EXPECT_EQ(gets[1].headers.count("range"), 1u);
  expect_same_model("hf:" + cache);
}

TEST_F(DownloadE2E, GatedRepositoryAndDryRun) {
  server_.add_repo({"lllyasviel/FramePack_F1_I2V_HY_20250503",
                    kCommits[0],
                    {{"config.json", "{}", false, 0}},
                    "token",
                    true});
  const CliRun gated = cli({"download", "framepack-f1", "--to", (dir_ / "f1").string()});
  EXPECT_EQ(gated.rc, 1);
  EXPECT_NE(gated.err.find("is gated"), std::string::npos) << gated.err;
  EXPECT_NE(gated.err.find("HF_TOKEN"), std::string::npos) << gated.err;
  EXPECT_FALSE(fs::exists(dir_ / "f1"));

  const CliRun dry = cli({"download", "framepack", "--to", (dir_ / "dry").string(), "--dry-run"});
  EXPECT_EQ(dry.rc, 0) << dry.err;
  EXPECT_NE(dry.out.find("dry run: nothing fetched"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("hunyuanvideo-community/HunyuanVideo@main"), std::string::npos) << dry.out;
  EXPECT_FALSE(fs::exists(dir_ / "dry"));

  const CliRun unknown = cli({"download", "sdxl"});
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_NE(unknown.err.find("known: framepack, framepack-f1"), std::string::npos) << unknown.err;
}

}  // namespace
