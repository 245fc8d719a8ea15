// The hub downloader against a real HTTP server on loopback (tests/support/hub_server.h): the
// layouts, and each fault's outcome — resumed, fetched again, or a clear error with nothing
// half-done visible.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framesmith/hub.h"
#include "layout.h"
#include "support/hub_server.h"

namespace fs = std::filesystem;
using namespace framesmith;
using framesmith::test::Fault;
using framesmith::test::HubRepo;
using framesmith::test::HubServer;

namespace {

const char* kCommitA = "0123456789abcdef0123456789abcdef01234567";
const char* kCommitB = "89abcdef0123456789abcdef0123456789abcdef";

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  unsigned x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/framesmith-hub-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A HunyuanVideo-like repository (with a transformer/ the selection must leave alone) and a
// FramePack-like one whose files sit at the root.
class HubDownload : public ::testing::Test {
 protected:
  void SetUp() override {
    weights = pattern(300000, 1);
    server.add_repo({"org/video",
                     kCommitA,
                     {{"vae/config.json", "{\"vae\": 1}", false},
                      {"vae/diffusion_pytorch_model.safetensors", weights, true},
                      {"text_encoder/config.json", "{\"te\": 1}", false},
                      {"text_encoder/model.safetensors", pattern(5000, 2), true},
                      {"transformer/diffusion_pytorch_model.safetensors", pattern(90000, 3), true},
                      {"README.md", "# video", false}},
                     "",
                     false});
    server.add_repo({"org/packed",
                     kCommitB,
                     {{"config.json", "{\"packed\": 1}", false},
                      {"diffusion_pytorch_model.safetensors", pattern(20000, 4), true}},
                     "",
                     false});
    config.endpoint = server.url();
    config.backoff_first_s = 0.01;
    config.backoff_max_s = 2;
    config.stall_timeout_s = 5;
    config.connect_timeout_s = 5;
  }

  std::vector<hub::RepoSelection> selection() const {
    return {{"org/packed", "main", {}, "transformer"},
            {"org/video", "main", {"vae", "text_encoder"}, ""}};
  }

  hub::DownloadResult download(const hub::Target& target, const hub::ProgressFn& fn = {},
                               hub::Control* control = nullptr) {
    hub::DownloadPlan plan = hub::plan_download(config, selection(), target);
    return hub::run_download(config, plan, fn, control);
  }

  fs::path cache_repo(const TempDir& d, const std::string& name) const {
    return d.path / ("models--org--" + name);
  }

  HubServer server;
  hub::HubConfig config;
  std::string weights;
};

TEST_F(HubDownload, PlansExactlyTheSelectedFilesWithSizes) {
  TempDir d;
  const hub::DownloadPlan plan =
      hub::plan_download(config, selection(), {hub::Layout::kPlainFolder, d.path.string()});
  std::vector<std::string> names;
  for (const auto& f : plan.files) names.push_back(f.repo + ":" + f.path);
  // Key files (config.json) come last, so that no folder looks complete early.
  EXPECT_EQ(names, (std::vector<std::string>{"org/packed:diffusion_pytorch_model.safetensors",
                                             "org/video:vae/diffusion_pytorch_model.safetensors",
                                             "org/video:text_encoder/model.safetensors",
                                             "org/packed:config.json", "org/video:vae/config.json",
                                             "org/video:text_encoder/config.json"}));
  EXPECT_EQ(plan.total_bytes, 20000u + 300000u + 5000u + 13u + 10u + 9u);
  EXPECT_EQ(plan.missing_bytes, plan.total_bytes);
  EXPECT_GT(plan.free_bytes, 0u);
  EXPECT_EQ(hub::disk_space_problem(plan), "");
  EXPECT_EQ(plan.files[0].local_path,
            (d.path / "transformer/diffusion_pytorch_model.safetensors").string());
  EXPECT_EQ(plan.files[0].lfs_sha256, HubServer::sha256_hex(pattern(20000, 4)));
}

TEST_F(HubDownload, HubCacheLayoutSharedWithPythonTools) {
  TempDir d;
  config.token = "secret";
  const hub::DownloadResult r = download({hub::Layout::kHubCache, d.path.string()});
  EXPECT_EQ(r.outcome, hub::Outcome::kDone);
  EXPECT_EQ(r.files_fetched, 6u);
  const fs::path video = cache_repo(d, "video");
  const fs::path vae = video / "snapshots" / kCommitA / "vae/diffusion_pytorch_model.safetensors";
  ASSERT_TRUE(fs::is_symlink(vae));
  EXPECT_EQ(fs::read_symlink(vae).string(), "../../../blobs/" + HubServer::sha256_hex(weights));
  EXPECT_EQ(slurp(vae), weights);
  const fs::path cfg = video / "snapshots" / kCommitA / "vae/config.json";
  EXPECT_EQ(fs::read_symlink(cfg).string(),
            "../../../blobs/" + HubServer::git_blob_id("{\"vae\": 1}"));
  EXPECT_EQ(slurp(video / "refs/main"), kCommitA);
  const fs::path packed_cfg = cache_repo(d, "packed") / "snapshots" / kCommitB / "config.json";
  EXPECT_EQ(fs::read_symlink(packed_cfg).string(),
            "../../blobs/" + HubServer::git_blob_id("{\"packed\": 1}"));
  // HunyuanVideo's own transformer and README are not fetched.
  EXPECT_TRUE(server.gets_of("transformer/diffusion_pytorch_model.safetensors").empty());
  EXPECT_FALSE(fs::exists(video / "snapshots" / kCommitA / "README.md"));
  // No partial files are left, no lock is held.
  for (const auto& e : fs::recursive_directory_iterator(d.path))
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();
  // The CDN (another port) got the LFS bytes without the token; the hub got the token.
  bool cdn_get = false;
  for (const auto& req : server.requests()) {
    const bool to_cdn = req.port != server.port();
    if (to_cdn) {
      cdn_get = true;
      EXPECT_EQ(req.headers.count("authorization"), 0u) << req.target;
    } else {
      EXPECT_EQ(req.headers.at("authorization"), "Bearer secret") << req.target;
    }
  }
  EXPECT_TRUE(cdn_get);
  // A second run finds everything and fetches nothing.
  server.clear_log();
  const hub::DownloadResult again = download({hub::Layout::kHubCache, d.path.string()});
  EXPECT_EQ(again.files_fetched, 0u);
  EXPECT_EQ(again.files_present, 6u);
  for (const auto& req : server.requests()) EXPECT_NE(req.method, "HEAD") << req.target;
}

TEST_F(HubDownload, PlainFolderLayout) {
  TempDir d;
  download({hub::Layout::kPlainFolder, d.path.string()});
  EXPECT_EQ(slurp(d.path / "vae/diffusion_pytorch_model.safetensors"), weights);
  EXPECT_EQ(slurp(d.path / "transformer/config.json"), "{\"packed\": 1}");
  EXPECT_EQ(slurp(d.path / "text_encoder/config.json"), "{\"te\": 1}");
  EXPECT_FALSE(fs::exists(d.path / "transformer/diffusion_pytorch_model.safetensors.incomplete"));
  EXPECT_FALSE(fs::exists(d.path / "README.md"));
}

TEST_F(HubDownload, ResumesWithRangeAfterADroppedConnection) {
  TempDir d;
  server.add_fault(Fault::drop("vae/diffusion_pytorch_model.safetensors", 100000));
  std::vector<hub::Progress> retries;
  const hub::DownloadResult r =
      download({hub::Layout::kHubCache, d.path.string()}, [&](const hub::Progress& p) {
        if (p.phase == hub::Phase::kRetrying) retries.push_back(p);
      });
  EXPECT_EQ(r.outcome, hub::Outcome::kDone);
  const auto gets = server.gets_of("vae/diffusion_pytorch_model.safetensors");
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].headers.count("range"), 0u);
  EXPECT_EQ(gets[1].headers.at("range"), "bytes=100000-");
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_NE(retries[0].message.find("connection lost"), std::string::npos) << retries[0].message;
  EXPECT_EQ(slurp(cache_repo(d, "video") / "snapshots" / kCommitA /
                  "vae/diffusion_pytorch_model.safetensors"),
            weights);
  // Only the missing bytes came again.
  std::uint64_t all = 0;
  for (const auto& f : {20000u, 300000u, 5000u, 13u, 10u, 9u}) all += f;
  EXPECT_EQ(r.fetched_bytes, all);
}

TEST_F(HubDownload, PausedRunLeavesOnlyAPartialAndTheNextRunResumesIt) {
  TempDir d;
  server.add_fault(Fault::slow("vae/diffusion_pytorch_model.safetensors", 200000));
  hub::Control control;
  const hub::Target target{hub::Layout::kHubCache, d.path.string()};
  const hub::DownloadResult first = download(
      target,
      [&](const hub::Progress& p) {
        if (p.file.find("vae/diffusion") != std::string::npos && p.file_done_bytes > 50000)
          control.pause = true;
      },
      &control);
  EXPECT_EQ(first.outcome, hub::Outcome::kPaused);
  const fs::path video = cache_repo(d, "video");
  const fs::path partial = video / "blobs" / (HubServer::sha256_hex(weights) + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  const auto kept = fs::file_size(partial);
  EXPECT_GT(kept, 50000u);
  EXPECT_LT(kept, weights.size());
  // Nothing half-done is visible: no snapshot entry for it, no ref yet.
  EXPECT_FALSE(
      fs::exists(video / "snapshots" / kCommitA / "vae/diffusion_pytorch_model.safetensors"));
  EXPECT_FALSE(fs::exists(video / "refs/main"));

  hub::DownloadPlan plan = hub::plan_download(config, selection(), target);
  EXPECT_EQ(plan.missing_bytes, plan.total_bytes - 20000u - kept);
  const hub::DownloadResult second = hub::run_download(config, plan, {}, nullptr);
  EXPECT_EQ(second.outcome, hub::Outcome::kDone);
  const auto gets = server.gets_of("vae/diffusion_pytorch_model.safetensors");
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[1].headers.at("range"), "bytes=" + std::to_string(kept) + "-");
  EXPECT_EQ(slurp(video / "snapshots" / kCommitA / "vae/diffusion_pytorch_model.safetensors"),
            weights);
  EXPECT_EQ(slurp(video / "refs/main"), kCommitA);
}

TEST_F(HubDownload, CancelRemovesThePartialFile) {
  TempDir d;
  server.add_fault(Fault::slow("vae/diffusion_pytorch_model.safetensors", 200000));
  hub::Control control;
  const hub::DownloadResult r = download(
      {hub::Layout::kHubCache, d.path.string()},
      [&](const hub::Progress& p) {
        if (p.file_done_bytes > 30000 && p.file.find("vae/diffusion") != std::string::npos)
          control.cancel = true;
      },
      &control);
  EXPECT_EQ(r.outcome, hub::Outcome::kCancelled);
  EXPECT_FALSE(fs::exists(cache_repo(d, "video") / "blobs" /
                          (HubServer::sha256_hex(weights) + ".incomplete")));
}

TEST_F(HubDownload, WrongBytesAreFetchedAgainNeverInstalled) {
  TempDir d;
  server.add_fault(Fault::corrupt("vae/diffusion_pytorch_model.safetensors"));
  server.add_fault(Fault::corrupt("vae/config.json"));
  const hub::DownloadResult r = download({hub::Layout::kHubCache, d.path.string()});
  EXPECT_EQ(r.refetched_after_bad_checksum, 2u);
  const fs::path snap = cache_repo(d, "video") / "snapshots" / kCommitA;
  EXPECT_EQ(slurp(snap / "vae/diffusion_pytorch_model.safetensors"), weights);
  EXPECT_EQ(slurp(snap / "vae/config.json"), "{\"vae\": 1}");
}

TEST_F(HubDownload, BytesWrongEveryTimeAreAnErrorWithNothingInstalled) {
  TempDir d;
  server.add_fault(Fault::corrupt("vae/diffusion_pytorch_model.safetensors", -1));
  try {
    download({hub::Layout::kHubCache, d.path.string()});
    FAIL() << "expected an error";
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("failed verification twice"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("SHA-256"), std::string::npos) << e.what();
  }
  const fs::path video = cache_repo(d, "video");
  const std::string sha = HubServer::sha256_hex(weights);
  EXPECT_FALSE(fs::exists(video / "blobs" / sha));
  EXPECT_FALSE(fs::exists(video / "blobs" / (sha + ".incomplete")));
  EXPECT_FALSE(
      fs::exists(video / "snapshots" / kCommitA / "vae/diffusion_pytorch_model.safetensors"));
  EXPECT_FALSE(fs::exists(video / "refs/main"));
}

TEST_F(HubDownload, ServerIgnoringRangeRewritesFromZero) {
  TempDir d;
  server.add_fault(Fault::drop("vae/diffusion_pytorch_model.safetensors", 70000));
  server.add_fault(Fault::ignore_range("vae/diffusion_pytorch_model.safetensors"));
  download({hub::Layout::kHubCache, d.path.string()});
  EXPECT_EQ(slurp(cache_repo(d, "video") / "snapshots" / kCommitA /
                  "vae/diffusion_pytorch_model.safetensors"),
            weights);
}

TEST_F(HubDownload, RateLimitHonoursRetryAfter) {
  TempDir d;
  server.add_fault(Fault::status_code("text_encoder/model.safetensors", 429, 2, "1"));
  std::vector<hub::Progress> retries;
  const auto r =
      download({hub::Layout::kPlainFolder, d.path.string()}, [&](const hub::Progress& p) {
        if (p.phase == hub::Phase::kRetrying) retries.push_back(p);
      });
  EXPECT_EQ(r.outcome, hub::Outcome::kDone);
  ASSERT_EQ(retries.size(), 2u);
  for (const auto& p : retries) {
    EXPECT_DOUBLE_EQ(p.retry_in_s, 1.0);
    EXPECT_EQ(p.message, "HTTP 429");
  }
  EXPECT_EQ(slurp(d.path / "text_encoder/model.safetensors"), pattern(5000, 2));
}

TEST_F(HubDownload, ServiceUnavailableBacksOffThenGivesUpClearly) {
  TempDir d;
  config.max_attempts = 3;
  server.add_fault(Fault::status_code("vae/config.json", 503, -1));
  try {
    download({hub::Layout::kPlainFolder, d.path.string()});
    FAIL() << "expected an error";
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("vae/config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("503"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(d.path / "vae/config.json"));
  // The weights before it are in; the folder does not look complete.
  EXPECT_TRUE(fs::exists(d.path / "vae/diffusion_pytorch_model.safetensors"));
}

TEST_F(HubDownload, SlowLinkCompletesWithSpeedAndEta) {
  TempDir d;
  server.add_fault(Fault::slow("vae/diffusion_pytorch_model.safetensors", 400000));
  double max_speed = 0;
  double some_eta = -1;
  download({hub::Layout::kPlainFolder, d.path.string()}, [&](const hub::Progress& p) {
    if (p.phase == hub::Phase::kDownloading && p.file.find("vae/diffusion") != std::string::npos) {
      max_speed = std::max(max_speed, p.bytes_per_s);
      if (p.eta_s > 0) some_eta = p.eta_s;
    }
  });
  EXPECT_EQ(slurp(d.path / "vae/diffusion_pytorch_model.safetensors"), weights);
  EXPECT_GT(max_speed, 0);
  EXPECT_LT(max_speed, 4e6);  // the link's 400 kB/s, not loopback's GB/s
  EXPECT_GT(some_eta, 0);
}

TEST_F(HubDownload, GatedRepositoryWithoutTokenSaysWhatToDo) {
  TempDir d;
  server.add_repo({"org/gated", kCommitA, {{"config.json", "{}", false}}, "right", true});
  try {
    hub::plan_download(config, {{"org/gated", "main", {}, ""}},
                       {hub::Layout::kHubCache, d.path.string()});
    FAIL() << "expected an error";
  } catch (const hub::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("org/gated is gated"), std::string::npos) << m;
    EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
    EXPECT_NE(m.find("401"), std::string::npos) << m;
  }
  config.token = "wrong";
  try {
    hub::plan_download(config, {{"org/gated", "main", {}, ""}},
                       {hub::Layout::kHubCache, d.path.string()});
    FAIL() << "expected an error";
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("403"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(d.path));
}

TEST_F(HubDownload, PrivateRepositoryTokenRefused) {
  TempDir d;
  server.add_repo({"org/private", kCommitA, {{"config.json", "{}", false}}, "right", false});
  config.token = "";
  try {
    hub::plan_download(config, {{"org/private", "main", {}, ""}},
                       {hub::Layout::kHubCache, d.path.string()});
    FAIL();
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such repository, or a private one"), std::string::npos)
        << e.what();
  }
  config.token = "right";
  EXPECT_NO_THROW(hub::plan_download(config, {{"org/private", "main", {}, ""}},
                                     {hub::Layout::kHubCache, d.path.string()}));
}

TEST_F(HubDownload, MissingRevisionAndFolderAreClearErrors) {
  TempDir d;
  const hub::Target t{hub::Layout::kHubCache, d.path.string()};
  try {
    hub::plan_download(config, {{"org/video", "v9", {"vae"}, ""}}, t);
    FAIL();
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such revision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
  }
  try {
    hub::plan_download(config, {{"org/video", "main", {"tokenizer"}, ""}}, t);
    FAIL();
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no files under tokenizer/"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::is_empty(d.path));
}

TEST_F(HubDownload, UnreachableEndpointIsAClearError) {
  TempDir d;
  config.endpoint = "http://127.0.0.1:1";
  try {
    hub::plan_download(config, selection(), {hub::Layout::kHubCache, d.path.string()});
    FAIL();
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach the hub at http://127.0.0.1:1"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(HubDownload, UnsafePathsInTheListingAreRefused) {
  TempDir d;
  server.add_repo({"org/evil", kCommitA, {{"../../outside", "x", false}}, "", false});
  try {
    hub::plan_download(config, {{"org/evil", "main", {}, ""}},
                       {hub::Layout::kPlainFolder, d.path.string()});
    FAIL();
  } catch (const hub::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a safe relative path"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::is_empty(d.path));
}

TEST_F(HubDownload, NotEnoughDiskIsRefusedBeforeAnyByte) {
  TempDir d;
  server.add_repo({"org/huge",
                   kCommitA,
                   {{"model.safetensors", "abc", true, std::uint64_t(1) << 55}},
                   "",
                   false});
  hub::DownloadPlan plan = hub::plan_download(config, {{"org/huge", "main", {}, ""}},
                                              {hub::Layout::kHubCache, d.path.string()});
  EXPECT_NE(hub::disk_space_problem(plan).find("not enough free disk space"), std::string::npos);
  server.clear_log();
  EXPECT_THROW(hub::run_download(config, plan, {}, nullptr), hub::Error);
  EXPECT_TRUE(server.requests().empty());
  EXPECT_TRUE(fs::is_empty(d.path));
}

// A full disk mid-file (here: a file-size limit, which fails write() as ENOSPC would): a clear
// error naming the file; the partial stays partial, nothing is installed.
TEST_F(HubDownload, DiskFullMidFileIsAClearErrorAndNothingInstalled) {
  TempDir d;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{150000, 150000};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    std::string msg = "no error";
    try {
      download({hub::Layout::kHubCache, d.path.string()});
    } catch (const std::exception& e) {
      msg = e.what();
    }
    (void)!::write(pipefd[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_NE(msg.find("vae/diffusion_pytorch_model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_NE(msg.find("next run resumes it"), std::string::npos) << msg;
  const fs::path video = cache_repo(d, "video");
  EXPECT_FALSE(fs::exists(video / "blobs" / HubServer::sha256_hex(weights)));
  EXPECT_FALSE(
      fs::exists(video / "snapshots" / kCommitA / "vae/diffusion_pytorch_model.safetensors"));
  EXPECT_FALSE(fs::exists(video / "refs/main"));
  // With room again, the same download resumes and completes.
  const auto r = download({hub::Layout::kHubCache, d.path.string()});
  EXPECT_EQ(r.outcome, hub::Outcome::kDone);
  EXPECT_EQ(slurp(video / "snapshots" / kCommitA / "vae/diffusion_pytorch_model.safetensors"),
            weights);
}

TEST_F(HubDownload, ProxyFromTheEnvironmentIsUsed) {
  TempDir d;
  config.endpoint = "http://hub.framesmith.invalid";
  ::setenv("http_proxy", server.url().c_str(), 1);
  ::unsetenv("no_proxy");
  ::unsetenv("NO_PROXY");
  hub::DownloadPlan plan;
  try {
    plan = hub::plan_download(config, {{"org/packed", "main", {}, "transformer"}},
                              {hub::Layout::kPlainFolder, d.path.string()});
    hub::run_download(config, plan, {}, nullptr);
  } catch (...) {
    ::unsetenv("http_proxy");
    throw;
  }
  ::unsetenv("http_proxy");
  EXPECT_EQ(slurp(d.path / "transformer/config.json"), "{\"packed\": 1}");
  bool proxied = false;
  for (const auto& req : server.requests())
    proxied =
        proxied || (req.headers.count("x-fixture-proxied") && req.host == "hub.framesmith.invalid");
  EXPECT_TRUE(proxied);
}

TEST_F(HubDownload, BlobFromAnotherRevisionIsLinkedNotFetched) {
  TempDir d;
  const hub::Target t{hub::Layout::kHubCache, d.path.string()};
  const fs::path blobs = cache_repo(d, "video") / "blobs";
  fs::create_directories(blobs);
  std::ofstream(blobs / HubServer::sha256_hex(weights), std::ios::binary) << weights;
  download(t);
  EXPECT_TRUE(server.gets_of("vae/diffusion_pytorch_model.safetensors").empty());
  EXPECT_EQ(slurp(cache_repo(d, "video") / "snapshots" / kCommitA /
                  "vae/diffusion_pytorch_model.safetensors"),
            weights);
}

TEST(HubTargets, ParseTarget) {
  ::setenv("HF_HUB_CACHE", "/x/hub", 1);
  EXPECT_EQ(hub::parse_target("").dir, "/x/hub");
  EXPECT_EQ(hub::parse_target("hf").layout, hub::Layout::kHubCache);
  EXPECT_EQ(hub::parse_target("hf:/y").dir, "/y");
  EXPECT_EQ(hub::parse_target("/models/fp/").layout, hub::Layout::kPlainFolder);
  EXPECT_EQ(hub::parse_target("/models/fp/").dir, "/models/fp");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(hub::model_set_selection("framepack-f1")[0].repo,
            "lllyasviel/FramePack_F1_I2V_HY_20250503");
  EXPECT_THROW(hub::model_set_selection("sdxl"), hub::Error);
}

}  // namespace
