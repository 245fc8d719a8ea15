// First start of the installed studio: user folders under XDG paths, the tiny model written once
// (and only when no model is configured), the note on the real weights.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "first_run.h"

namespace fs = std::filesystem;

namespace {

// A fresh home with its own XDG folders, so the test never touches the real user's files.
class FirstRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::temp_directory_path() /
            ("framesmith-first-run-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(home_);
    fs::create_directories(home_);
    setenv("HOME", home_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", (home_ / "cfg").c_str(), 1);
    setenv("XDG_DATA_HOME", (home_ / "data").c_str(), 1);
    setenv("XDG_CACHE_HOME", (home_ / "cache").c_str(), 1);
  }
  void TearDown() override { fs::remove_all(home_); }
  fs::path home_;
};

TEST_F(FirstRunTest, FoldersFollowXdg) {
  const auto f = framesmith::app::user_folders();
  EXPECT_EQ(f.config, (home_ / "cfg" / "framesmith").string());
  EXPECT_EQ(f.data, (home_ / "data" / "framesmith").string());
  EXPECT_EQ(f.models, (home_ / "data" / "framesmith" / "models").string());
  EXPECT_EQ(f.cache, (home_ / "cache" / "framesmith").string());
  EXPECT_EQ(fs::path(f.videos).filename(), "Framesmith");
  EXPECT_FALSE(fs::exists(f.data)) << "user_folders() must create nothing";
}

TEST_F(FirstRunTest, WritesTinyModelOnceWhenNoModelIsConfigured) {
  const auto first = framesmith::app::prepare_first_run("");
  EXPECT_TRUE(first.first_start);
  EXPECT_TRUE(first.wrote_tiny_model);
  EXPECT_EQ(first.model_dir, first.folders.models + "/tiny");
  for (const auto& d : {first.folders.config, first.folders.data, first.folders.models,
                        first.folders.cache, first.folders.videos})
    EXPECT_TRUE(fs::is_directory(d)) << d;
  EXPECT_TRUE(fs::exists(first.model_dir + "/transformer/config.json"));
  EXPECT_TRUE(fs::exists(first.folders.models + "/README.txt"));
  for (const auto& e : fs::directory_iterator(first.folders.models))
    EXPECT_EQ(e.path().filename().string().find("tiny."), std::string::npos) << e.path();
  EXPECT_NE(first.message.find("noise"), std::string::npos);
  EXPECT_NE(first.message.find("lllyasviel/FramePackI2V_HY"), std::string::npos);

  const auto second = framesmith::app::prepare_first_run("");
  EXPECT_FALSE(second.first_start);
  EXPECT_FALSE(second.wrote_tiny_model);
  EXPECT_EQ(second.model_dir, first.model_dir);
}

TEST_F(FirstRunTest, ConfiguredModelIsKeptAndNoTinyModelIsWritten) {
  const auto r = framesmith::app::prepare_first_run("/models/framepack");
  EXPECT_EQ(r.model_dir, "/models/framepack");
  EXPECT_FALSE(r.wrote_tiny_model);
  EXPECT_TRUE(r.message.empty());
  EXPECT_TRUE(fs::is_directory(r.folders.videos));
  EXPECT_FALSE(fs::exists(r.folders.models + "/tiny"));
}

TEST_F(FirstRunTest, UnwritableDataFolderIsAClearError) {
  // A file where the data folder should be: the error names the folder.
  fs::create_directories(home_ / "data");
  { std::ofstream(home_ / "data" / "framesmith") << "x"; }
  try {
    framesmith::app::prepare_first_run("");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("framesmith"), std::string::npos) << e.what();
  }
}

}  // namespace
