// The engine's subcommands as a user meets them: make-tiny-model, inspect-model (including
// broken and incomplete model sets) and check-golden.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <limits>
#include <sstream>

#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "image/ppm.h"
#include "io/safetensors.h"
#include "models/transformer_packed.h"
#include "support/engine_commands.h"

using namespace framesmith;
using framesmith::test::CmdResult;

namespace {

CmdResult run(const std::vector<std::string>& args) {
  return test::run_command(run_engine_command, args);
}

std::string tiny_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/fs_cli_XXXXXX";
    std::string d = std::string(::mkdtemp(tmpl)) + "/tiny";
    make_tiny_model(d, 0);
    return d;
  }();
  return dir;
}

}  // namespace

TEST(EngineCli, UnknownCommandIsNotOurs) {
  EXPECT_EQ(run({"frobnicate"}).rc, -1);
}

TEST(EngineCli, TinyModelIsCompleteAndDeterministic) {
  const CmdResult r = run({"inspect-model", tiny_dir()});
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all components ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HunyuanVideoTransformer3DModelPacked"), std::string::npos);
  EXPECT_NE(r.out.find("SiglipVisionModel"), std::string::npos);

  // The same seed writes the same weights.
  char tmpl[] = "/tmp/fs_cli2_XXXXXX";
  const std::string again = std::string(::mkdtemp(tmpl)) + "/tiny";
  ASSERT_EQ(run({"make-tiny-model", again, "--seed", "0"}).rc, 0);
  auto a = io::TensorStore::open(tiny_dir() + "/transformer");
  auto b = io::TensorStore::open(again + "/transformer");
  for (const auto& n : a.names()) ASSERT_TRUE(at::equal(a.tensor(n), b.tensor(n))) << n;
}

TEST(EngineCli, InspectNamesWhatIsMissingOrMisshapen) {
  char tmpl[] = "/tmp/fs_cli3_XXXXXX";
  const std::string dir = std::string(::mkdtemp(tmpl)) + "/broken";
  make_tiny_model(dir, 1);
  // Remove the VAE and give one transformer tensor a shape its config does not imply.
  ASSERT_EQ(std::system(("rm -rf '" + dir + "/vae'").c_str()), 0);
  auto store = io::TensorStore::open(dir + "/transformer");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& n : store.names()) {
    at::Tensor t = store.tensor(n).clone();
    if (n == "proj_out.weight") t = at::zeros({t.size(0), t.size(1) + 1});
    if (n == "norm_out.linear.bias") continue;  // and drop one
    tensors.emplace_back(n, t);
  }
  io::save_safetensors(dir + "/transformer/diffusion_pytorch_model.safetensors", tensors);
  const CmdResult r = run({"inspect-model", dir});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("MISSING: no vae/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"proj_out.weight\" has shape"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing tensor \"norm_out.linear.bias\""), std::string::npos) << r.out;
}

// A component folder without its config is named as such, not as an absent folder.
TEST(EngineCli, InspectNamesTheMissingFileOfAPresentFolder) {
  char tmpl[] = "/tmp/fs_cli6_XXXXXX";
  const std::string dir = std::string(::mkdtemp(tmpl)) + "/noconfig";
  make_tiny_model(dir, 2);
  ASSERT_EQ(std::remove((dir + "/transformer/config.json").c_str()), 0);
  const CmdResult r = run({"inspect-model", dir});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("MISSING: " + dir + "/transformer/ has no config.json"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("no transformer/ found"), std::string::npos) << r.out;
}

// NaN weights once gave exit 0 and a black video: the load refuses the tensor by name.
TEST(EngineCli, NonFiniteWeightsAreRefusedAtLoad) {
  char tmpl[] = "/tmp/fs_cli7_XXXXXX";
  const std::string dir = std::string(::mkdtemp(tmpl)) + "/nan";
  make_tiny_model(dir, 3);
  auto store = io::TensorStore::open(dir + "/transformer");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& n : store.names()) {
    at::Tensor t = store.tensor(n).clone();
    if (n == "proj_out.weight") t.view(-1)[3] = std::numeric_limits<float>::quiet_NaN();
    if (n == "norm_out.linear.bias") t.view(-1)[0] = std::numeric_limits<float>::infinity();
    tensors.emplace_back(n, t);
  }
  io::save_safetensors(dir + "/transformer/diffusion_pytorch_model.safetensors", tensors);
  try {
    load_transformer(dir + "/transformer", at::kFloat, at::kCPU);
    ADD_FAILURE() << "NaN weights were loaded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(m.find("\"proj_out.weight\" holds 1 NaN or infinite") != std::string::npos ||
                m.find("\"norm_out.linear.bias\" holds 1 NaN or infinite") != std::string::npos)
        << m;
  }
}

// inspect-model checks every component as generate loads it: the encoders' tensors against
// their configs, the tokenizers and preprocessor parsed by the real loaders (a garbage
// tokenizer.json that generate rejects used to be "ok"), unused tensors noted.
TEST(EngineCli, InspectChecksEncodersAndTokenizersAsGenerateLoadsThem) {
  char tmpl[] = "/tmp/fs_cli8_XXXXXX";
  const std::string dir = std::string(::mkdtemp(tmpl)) + "/parts";
  make_tiny_model(dir, 4);
  {
    std::FILE* f = std::fopen((dir + "/tokenizer/tokenizer.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}})", f);
    std::fclose(f);
  }
  auto store = io::TensorStore::open(dir + "/image_encoder");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::string dropped;
  for (const auto& n : store.names()) {
    if (dropped.empty() && n.find("layers.0.") != std::string::npos) {
      dropped = n;
      continue;
    }
    tensors.emplace_back(n, store.tensor(n).clone());
  }
  tensors.emplace_back("unrelated.weight", at::zeros({2}));
  io::save_safetensors(dir + "/image_encoder/model.safetensors", tensors);
  const CmdResult r = run({"inspect-model", dir});
  EXPECT_EQ(r.rc, 1) << r.out;
  const std::size_t tok = r.out.find("[tokenizer]");
  ASSERT_NE(tok, std::string::npos) << r.out;
  const std::string tok_section = r.out.substr(tok, r.out.find("\n[", tok + 1) - tok);
  EXPECT_NE(tok_section.find("PROBLEM: tokenizer.json"), std::string::npos) << tok_section;
  EXPECT_NE(tok_section.find("is not in model.vocab"), std::string::npos) << tok_section;
  ASSERT_FALSE(dropped.empty());
  EXPECT_NE(r.out.find("missing tensor \"" + dropped + "\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 tensor(s) the model does not use: unrelated.weight"), std::string::npos)
      << r.out;
}

TEST(EngineCli, InspectRefusesPickles) {
  char tmpl[] = "/tmp/fs_cli4_XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  ASSERT_EQ(std::system(("mkdir -p " + dir + "/transformer && echo '{}' > " + dir +
                         "/transformer/config.json && echo x > " + dir +
                         "/transformer/diffusion_pytorch_model.bin")
                            .c_str()),
            0);
  const CmdResult r = run({"inspect-model", dir});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("pickled checkpoints are refused"), std::string::npos) << r.out;
}

TEST(EngineCli, CheckGoldenFailsClearlyOnAMissingFolder) {
  const CmdResult r = run({"check-golden", "/nonexistent/case-set"});
  EXPECT_NE(r.rc, 0);
  EXPECT_NE((r.out + r.err).find("/nonexistent/case-set"), std::string::npos) << r.out << r.err;
}

// A case set may hold cases this build has no runner for (other tools' sets, newer formats):
// each is a failure that names the case, never a skip or a pass; so is a case that cases.json
// names without its file.
TEST(EngineCli, CheckGoldenFailsCasesWithoutARunner) {
  char tmpl[] = "/tmp/fs_cli5_XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  io::save_safetensors(dir + "/mystery_case.safetensors", {{"in.x", at::zeros({2})}});
  {
    std::FILE* f = std::fopen((dir + "/cases.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(R"({"spec": {}, "cases": {"mystery_case": "?", "not_a_case": "?",)"
               R"( "sample_cfg1": "listed, file missing"}})",
               f);
    std::fclose(f);
  }
  const CmdResult r = run({"check-golden", dir});
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("mystery_case"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not_a_case"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ERROR no runner for this case"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sample_cfg1.safetensors is missing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 passed, 3 failed"), std::string::npos) << r.out;
}

// The PPM start image of framesmith-engine generate: what image tools write is read, and a
// hostile header is refused before it allocates anything.
TEST(EngineCli, PpmImagesAreReadAndHostileOnesRefused) {
  const std::string ok8 =
      std::string("P6\n# made by hand\n2 1\n255\n") + std::string("\x01\x02\x03\xff\x00\x80", 6);
  Frames f = image::parse_ppm(ok8, "a.ppm");
  EXPECT_EQ(f.width, 2);
  EXPECT_EQ(f.height, 1);
  EXPECT_EQ(f.rgb, (std::vector<std::uint8_t>{1, 2, 3, 255, 0, 128}));
  // 16-bit samples (big-endian) and a small maxval are scaled to 0..255.
  f = image::parse_ppm(std::string("P6 1 1 65535\n") + std::string("\xff\xff\x00\x00\x80\x00", 6),
                       "b.ppm");
  EXPECT_EQ(f.rgb, (std::vector<std::uint8_t>{255, 0, 128}));
  f = image::parse_ppm(std::string("P6 1 1 1\n") + std::string("\x01\x00\x01", 3), "c.ppm");
  EXPECT_EQ(f.rgb, (std::vector<std::uint8_t>{255, 0, 255}));

  const auto refused = [](const std::string& bytes, const std::string& why) {
    try {
      image::parse_ppm(bytes, "bad.ppm");
      ADD_FAILURE() << "accepted: " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.ppm"), std::string::npos) << e.what();
    }
  };
  refused("P3\n1 1\n255\n0 0 0\n", "not a binary PPM");
  refused("", "not a binary PPM");
  refused("P6\n99999999999999999999 1\n255\n", "width is over 16384");
  refused("P6\n16385 16385\n255\n", "width is over 16384");
  refused("P6\n0 1\n255\n", "no pixels");
  refused("P6\n1 1\n0\n\x01\x02\x03", "maximum sample value must be");
  refused("P6\n1 1\n70000\n", "maximum sample value is over");
  refused("P6\n-1 1\n255\n", "no width");
  refused("P6\n1 1\n255", "does not end in whitespace");
  refused("P6\n2 2\n255\n\x01\x02\x03", "cut short");
  refused(std::string("P6\n1 1\n100\n\x65\x00\x00", 14), "over the header's maximum");

  char tmpl[] = "/tmp/fs_ppm_XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::vector<std::uint8_t> rgb = {9, 8, 7, 6, 5, 4};
  image::write_ppm(dir + "/w.ppm", rgb.data(), 1, 2);
  f = image::read_ppm(dir + "/w.ppm");
  EXPECT_EQ(f.width, 1);
  EXPECT_EQ(f.height, 2);
  EXPECT_EQ(f.rgb, rgb);
  EXPECT_THROW(image::read_ppm(dir + "/missing.ppm"), Error);
}
