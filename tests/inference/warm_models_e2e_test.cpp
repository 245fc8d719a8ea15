// Warm models (ModelReuse::kKeepWarm, what the studio runs): the second identical job takes the
// transformer, VAE, text encoders, image embedding and start latent from the warm registry and
// makes exactly the cold job's video, on the plain CPU and on the simulated device; another
// model replaces the warm one; the budget and Unload are honoured.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <set>

#include "framesmith/engine_cli.h"
#include "framesmith/pipeline.h"
#include "io/safetensors.h"
#include "memory/simulated_device.h"
#include "pipeline/conditioning.h"
#include "support/engine_commands.h"

using namespace framesmith;
using framesmith::test::gradient;

namespace {

std::string tiny_dir(unsigned long long seed) {
  char tmpl[] = "/tmp/fs_warm_XXXXXX";
  std::string d = std::string(::mkdtemp(tmpl)) + "/tiny";
  make_tiny_model(d, seed);
  return d;
}

const std::string& model_a() {
  static const std::string d = tiny_dir(0);
  return d;
}

GenerationRequest request(ModelReuse reuse, std::int64_t budget = 0) {
  GenerationRequest r;
  r.model_dir = model_a();
  r.image = gradient(96, 64);
  r.prompt = "a gradient that moves";
  r.seconds = 0.5;
  r.steps = 2;
  r.latent_window = 2;
  r.resolution = 64;
  r.cache = StepCache::kNone;
  r.model_reuse = reuse;
  r.vram_budget_bytes = budget;
  r.preserved_memory_bytes = 0;
  return r;
}

struct JobRun {
  GenerationResult result;
  std::set<std::string> phases;  // progress phases the job went through
  std::string warm_notice;
};

JobRun run_job(const GenerationRequest& r) {
  JobRun out;
  GenerationCallbacks cb;
  cb.on_progress = [&](const Progress& p) { out.phases.insert(p.phase); };
  cb.on_event = [&](const Event& e) {
    if (e.type == EventType::kNotice && e.text("message").rfind("kept warm", 0) == 0)
      out.warm_notice = e.text("message");
  };
  out.result = generate(r, cb);
  return out;
}

std::set<std::string> kinds() {
  std::set<std::string> k;
  for (const WarmModel& m : warm_models()) k.insert(m.kind);
  return k;
}

class WarmModels : public ::testing::Test {
 protected:
  void SetUp() override { unload_warm_models(); }
  void TearDown() override {
    unload_warm_models();
    set_warm_models_budget(-1);
  }
};

}  // namespace

TEST_F(WarmModels, SecondIdenticalJobReusesEverythingAndMakesTheSameVideo) {
  const JobRun cold = run_job(request(ModelReuse::kLoadPerJob));
  ASSERT_EQ(cold.result.status, StatusCode::kOk) << cold.result.message;
  EXPECT_TRUE(warm_models().empty());  // a one-job program keeps nothing
  unload_warm_models();

  const JobRun first = run_job(request(ModelReuse::kKeepWarm));
  ASSERT_EQ(first.result.status, StatusCode::kOk) << first.result.message;
  EXPECT_EQ(first.warm_notice, "");
  EXPECT_EQ(kinds(), (std::set<std::string>{"transformer", "vae", "text encoders",
                                            "image embedding", "latent"}));
  const JobRun second = run_job(request(ModelReuse::kKeepWarm));
  ASSERT_EQ(second.result.status, StatusCode::kOk) << second.result.message;
  EXPECT_EQ(second.warm_notice,
            "kept warm from an earlier job: image embedding, transformer, VAE, start latent");
  // Nothing was encoded again: no text, image-encoder or VAE-encode phase ran.
  for (const char* phase : {"text", "image encoder", "vae encode"}) {
    EXPECT_TRUE(first.phases.count(phase)) << phase;
    EXPECT_FALSE(second.phases.count(phase)) << phase;
  }
  EXPECT_EQ(first.result.video.rgb, cold.result.video.rgb);
  EXPECT_EQ(second.result.video.rgb, cold.result.video.rgb);
  for (const WarmModel& m : warm_models()) {
    EXPECT_GE(m.host_bytes, 0) << m.kind;
    EXPECT_FALSE(m.description.empty()) << m.kind;
  }
}

TEST_F(WarmModels, OnTheSimulatedDeviceTheWarmTransformerGoesBackToTheHostBetweenJobs) {
  const std::int64_t budget = std::int64_t(512) << 20;
  const JobRun cold = run_job(request(ModelReuse::kLoadPerJob, budget));
  ASSERT_EQ(cold.result.status, StatusCode::kOk) << cold.result.message;
  const JobRun first = run_job(request(ModelReuse::kKeepWarm, budget));
  const JobRun second = run_job(request(ModelReuse::kKeepWarm, budget));
  ASSERT_EQ(second.result.status, StatusCode::kOk) << second.result.message;
  EXPECT_NE(second.warm_notice.find("transformer"), std::string::npos) << second.warm_notice;
  EXPECT_EQ(second.result.video.rgb, cold.result.video.rgb);
  EXPECT_EQ(first.result.video.rgb, cold.result.video.rgb);
  // Between jobs the simulated card holds nothing: the warm models are host-side.
  EXPECT_FALSE(memory::simulated_device::installed());
  for (const WarmModel& m : warm_models()) {
    if (m.kind == "transformer") {
      EXPECT_GT(m.mapped_bytes, 0);
    }
  }
  // A third job after the device's job, on the plain CPU: another transformer entry (another
  // conversion), the same video.
  const JobRun cpu = run_job(request(ModelReuse::kKeepWarm));
  EXPECT_EQ(cpu.result.video.rgb, cold.result.video.rgb);
  const std::vector<WarmModel> kept = warm_models();
  EXPECT_EQ(std::count_if(kept.begin(), kept.end(),
                          [](const WarmModel& m) { return m.kind == "transformer"; }),
            1);
}

TEST_F(WarmModels, AnotherModelReplacesTheWarmOne) {
  run_job(request(ModelReuse::kKeepWarm));
  const std::string other = tiny_dir(5);
  GenerationRequest r = request(ModelReuse::kKeepWarm);
  r.model_dir = other;
  const JobRun b = run_job(r);
  ASSERT_EQ(b.result.status, StatusCode::kOk) << b.result.message;
  EXPECT_EQ(b.warm_notice, "");
  int transformers = 0;
  for (const WarmModel& m : warm_models())
    if (m.kind == "transformer") {
      ++transformers;
      EXPECT_NE(m.description.find(other), std::string::npos) << m.description;
    }
  EXPECT_EQ(transformers, 1);
}

TEST_F(WarmModels, BudgetAndUnloadAreHonoured) {
  set_warm_models_budget(0);  // only what holds no host memory of its own may stay
  run_job(request(ModelReuse::kKeepWarm));
  for (const WarmModel& m : warm_models()) EXPECT_EQ(m.host_bytes, 0) << m.kind;
  EXPECT_FALSE(kinds().count("image embedding"));
  const JobRun again = run_job(request(ModelReuse::kKeepWarm));
  EXPECT_TRUE(again.phases.count("image encoder"));  // not kept: encoded again
  set_warm_models_budget(-1);
  run_job(request(ModelReuse::kKeepWarm));
  EXPECT_TRUE(kinds().count("image embedding"));
  unload_warm_models();
  EXPECT_TRUE(warm_models().empty());
  const JobRun after = run_job(request(ModelReuse::kKeepWarm));
  EXPECT_EQ(after.warm_notice, "");
  EXPECT_TRUE(after.phases.count("text"));
}

namespace {

// A LoRA for the tiny transformer (diffusers names): one attention projection.
std::string write_lora(const std::string& model, const std::string& path) {
  const io::TensorStore store = io::TensorStore::open(model + "/transformer");
  const std::vector<std::int64_t> shape = store.info("transformer_blocks.0.attn.to_q.weight").shape;
  at::Generator g = at::detail::createCPUGenerator(5);
  at::Tensor a = at::randn({4, shape[1]}, g, at::kFloat);
  at::Tensor b = at::randn({shape[0], 4}, g, at::kFloat).mul(0.5);
  io::save_safetensors(path, {{"transformer.transformer_blocks.0.attn.to_q.lora_A.weight", a},
                              {"transformer.transformer_blocks.0.attn.to_q.lora_B.weight", b}});
  return path;
}

}  // namespace

// A new LoRA strength reuses the warm base model (not loaded again) and makes exactly what a
// cold job with that strength makes: on a device (factors added at each placement) and on the
// plain CPU (the touched weights converted again from the mapping).
class WarmLora : public WarmModels, public ::testing::WithParamInterface<std::int64_t> {};

TEST_P(WarmLora, NewStrengthReusesTheBaseModel) {
  const std::int64_t budget = GetParam();
  const std::string lora =
      write_lora(model_a(), model_a() + "/../style" + std::to_string(budget) + ".safetensors");
  GenerationRequest weak = request(ModelReuse::kKeepWarm, budget);
  weak.loras = {{lora, 0.5}};
  GenerationRequest strong = weak;
  strong.loras = {{lora, 1.5}};
  GenerationRequest cold = strong;
  cold.model_reuse = ModelReuse::kLoadPerJob;
  const JobRun c = run_job(cold);
  ASSERT_EQ(c.result.status, StatusCode::kOk) << c.result.message;
  const JobRun a = run_job(weak);
  const JobRun b = run_job(strong);
  ASSERT_EQ(b.result.status, StatusCode::kOk) << b.result.message;
  EXPECT_NE(b.warm_notice.find("transformer (with this job's LoRAs)"), std::string::npos)
      << b.warm_notice;
  EXPECT_EQ(b.result.video.rgb, c.result.video.rgb);
  EXPECT_NE(a.result.video.rgb, c.result.video.rgb);  // the strength did change the video
  // And without LoRAs again: the base model's video.
  const JobRun plain = run_job(request(ModelReuse::kKeepWarm, budget));
  const JobRun plain_cold = run_job(request(ModelReuse::kLoadPerJob, budget));
  EXPECT_EQ(plain.result.video.rgb, plain_cold.result.video.rgb);
}

INSTANTIATE_TEST_SUITE_P(DeviceAndPlainCpu, WarmLora,
                         ::testing::Values(std::int64_t(512) << 20, std::int64_t(0)));
