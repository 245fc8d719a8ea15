// Every command of both programs parses through CLI11 and answers --help with its options;
// unknown options and missing arguments are one clear line.
#include <gtest/gtest.h>

#include <sstream>

#include "cli.h"
#include "framesmith/engine_cli.h"
#include "framesmith/generation_options.h"

using namespace framesmith;

namespace {

struct Answer {
  int rc;
  std::string out, err;
};

Answer cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = app::run_cli(args, out, err);
  return {rc, out.str(), err.str()};
}

}  // namespace

TEST(CliHelp, EveryCommandAnswersHelpWithItsOptions) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"generate", "--help"}, "--vram-budget"},
      {{"resume", "--help"}, "JOBDIR"},
      {{"export-frames", "-h"}, "--frame"},
      {{"download", "--help"}, "--to"},
      {{"inspect-model", "--help"}, "--variant"},
      {{"make-tiny-model", "--help"}, "--seed"},
      {{"check-golden", "--help"}, "DIR"},
      {{"loras", "--help"}, "--lora-dir"},
      {{"make-random-model", "--help"}, "--max-shard-size"},
      {{"estimate", "--help"}, "--image-size"},
      {{"bench", "step-cache", "--help"}, "TeaCache and MagCache"},
      {{"bench", "warm-models", "--help"}, "--repeat"},
  };
  for (const auto& [args, expected] : cases) {
    const Answer a = cli(args);
    EXPECT_EQ(a.rc, 0) << args[0] << ": " << a.err;
    EXPECT_NE(a.out.find("Usage:"), std::string::npos) << args[0] << ": " << a.out;
    EXPECT_NE(a.out.find(expected), std::string::npos) << args[0] << ": " << a.out;
  }
}

TEST(CliHelp, MistakesAreOneClearLine) {
  Answer a = cli({"generate", "--imgae", "x.png"});
  EXPECT_EQ(a.rc, 1);
  EXPECT_NE(a.err.find("unknown option \"--imgae\" (see framesmith-cli generate --help)"),
            std::string::npos)
      << a.err;
  a = cli({"resume"});
  EXPECT_EQ(a.rc, 1);
  EXPECT_NE(a.err.find("JOBDIR is required"), std::string::npos) << a.err;
  a = cli({"generate", "--seconds"});
  EXPECT_EQ(a.rc, 1);
  EXPECT_NE(a.err.find("--seconds"), std::string::npos) << a.err;
  a = cli({"bench", "step-cache", "--model", "m", "--bogus", "1"});
  EXPECT_EQ(a.rc, 1);
  EXPECT_NE(a.err.find("unknown option \"--bogus\""), std::string::npos) << a.err;
  a = cli({"export-frames", "only-one.mp4"});
  EXPECT_EQ(a.rc, 1);
  EXPECT_NE(a.err.find("export-frames"), std::string::npos) << a.err;
}

// Options keep their documented spellings: repeated values, values that start with a dash, the
// --name=value form.
TEST(CliHelp, DocumentedSpellingsStillParse) {
  const CommandOptions o = parse_command(
      {"t", "", {}, "", option_specs({"--lora", "--prompt", "--shift"}, {"--teacache"})},
      {"generate", "--lora", "a:0.5", "--lora", "b:-1", "--prompt", "-cinematic shot",
       "--shift=-0.5", "--teacache"},
      1);
  EXPECT_EQ(o.all("--lora"), (std::vector<std::string>{"a:0.5", "b:-1"}));
  EXPECT_EQ(o.get("--prompt"), "-cinematic shot");
  EXPECT_EQ(o.get("--shift"), "-0.5");
  EXPECT_TRUE(o.flag("--teacache"));
}
