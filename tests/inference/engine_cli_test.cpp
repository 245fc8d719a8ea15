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
#include "io/safetensors.h"
#include "models/transformer_packed.h"

using namespace framesmith;

namespace {

struct CmdResult {
  int rc;
  std::string out, err;
};

CmdResult run(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = run_engine_command(args, out, err);
  return {rc, out.str(), err.str()};
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
