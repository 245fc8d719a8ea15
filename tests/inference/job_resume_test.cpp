// Resuming FramePack's section loops from saved sections (the noise generator re-drawn, the video
// decoded again from the saved latents) gives the uninterrupted run's latents and pixels; and the
// job folder (JobStore) saves and reads back what a job needs to be resumed.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "framesmith/job_folder.h"
#include "framesmith/request_json.h"
#include "io/safetensors.h"
#include "models/transformer_packed.h"
#include "models/vae.h"
#include "pipeline/job_store.h"
#include "pipeline/section_loop.h"
#include "pipeline/section_schedule.h"
#include "support/section_loop_inputs.h"

namespace fs = std::filesystem;
using namespace framesmith;

namespace {

const std::string kModelSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/framepack-tiny-a";

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

struct LoopRun {
  pipeline::SectionLoopResult result;
  std::vector<at::Tensor> section_latents;  // of the sections sampled (not resumed)
  std::vector<int> sections_called;         // sections sampled
  std::vector<int> sections_resumed;        // sections handed out again from resume_sections
  at::Tensor video;                         // every chunk put together
  at::Tensor history_latents;
};

class SectionLoopResume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    transformer_ = load_transformer(kModelSet + "/transformer", at::kFloat, at::kCPU);
    vae_ = load_vae(kModelSet + "/vae", at::kFloat, at::kCPU);
  }
  static void TearDownTestSuite() {
    transformer_.reset();
    vae_.reset();
  }

  // Random conditioning of the widths the transformer expects (read from its config).
  static pipeline::SectionLoopInputs inputs() {
    // latents 6 x 8: not square
    return framesmith::test_support::random_section_loop_inputs(transformer_->config(), 5, 48, 64);
  }

  static pipeline::SectionLoopParams params(pipeline::LoopVariant v) {
    pipeline::SectionLoopParams p;
    p.variant = v;
    p.num_sections = 3;
    p.latent_window_size = 2;
    p.steps = 2;
    p.seed = 1234;
    p.sample_dtype = at::kFloat;
    return p;
  }

  static LoopRun run(const pipeline::SectionLoopInputs& in, const pipeline::SectionLoopParams& p) {
    LoopRun r;
    pipeline::SectionLoopCallbacks cb;
    pipeline::VideoAssembler video;
    cb.on_section = [&](const pipeline::SectionOutput& out) {
      video.add(out);
      if (out.resumed) {
        r.sections_resumed.push_back(out.section);
        return;
      }
      r.section_latents.push_back(out.new_latents.clone());
      r.sections_called.push_back(out.section);
    };
    r.result = pipeline::run_section_loop(*transformer_, *vae_, in, p, cb);
    r.video = video.video_so_far();
    r.history_latents = video.history_latents(p.variant, r.result.start_latent);
    return r;
  }

  void check_resume(pipeline::LoopVariant v) {
    const pipeline::SectionLoopParams p = params(v);
    pipeline::SectionLoopInputs in = inputs();
    const LoopRun full = run(in, p);
    ASSERT_EQ(full.section_latents.size(), 3u);
    in.start_latent = full.result.start_latent;
    for (std::size_t done = 1; done <= 3; ++done) {
      in.resume_sections = pipeline::ResumedSections::of(
          {full.section_latents.begin(), full.section_latents.begin() + done});
      const LoopRun resumed = run(in, p);
      const double dl = max_abs_diff(resumed.history_latents, full.history_latents);
      const double dp = max_abs_diff(resumed.video, full.video);
      std::cout << "[ info ] resumed after " << done << " of 3 sections: latents max |diff| " << dl
                << ", pixels max |diff| " << dp << "\n";
      EXPECT_LE(dl, 1e-6);
      EXPECT_LE(dp, 1e-6);
      // The sections generated now are sampled; the resumed ones are handed out again, marked.
      std::vector<int> expected, expected_resumed;
      for (std::size_t s = done; s < 3; ++s) expected.push_back(static_cast<int>(s));
      for (std::size_t s = 0; s < done; ++s) expected_resumed.push_back(static_cast<int>(s));
      EXPECT_EQ(resumed.sections_called, expected);
      EXPECT_EQ(resumed.sections_resumed, expected_resumed);
      for (std::size_t s = done; s < 3; ++s)
        EXPECT_LE(max_abs_diff(resumed.section_latents[s - done], full.section_latents[s]), 1e-6);
    }
  }

  static std::shared_ptr<PackedTransformer> transformer_;
  static std::shared_ptr<Vae> vae_;
};

std::shared_ptr<PackedTransformer> SectionLoopResume::transformer_;
std::shared_ptr<Vae> SectionLoopResume::vae_;

TEST_F(SectionLoopResume, OriginalEqualsUninterruptedRun) {
  check_resume(pipeline::LoopVariant::kOriginal);
}

TEST_F(SectionLoopResume, F1EqualsUninterruptedRun) {
  check_resume(pipeline::LoopVariant::kF1);
}

// A decode that fails (out of memory at its smallest rung, say) comes after the section's
// latents were handed out for saving: a job that dies there keeps what it sampled, and the
// sampled latents are the ones a full run reports.
TEST_F(SectionLoopResume, SampledLatentsAreHandedOutBeforeTheDecode) {
  for (const auto v : {pipeline::LoopVariant::kOriginal, pipeline::LoopVariant::kF1}) {
    const pipeline::SectionLoopParams p = params(v);
    const pipeline::SectionLoopInputs in = inputs();
    const LoopRun full = run(in, p);
    std::vector<at::Tensor> sampled;
    int decodes = 0;
    pipeline::SectionLoopCallbacks cb;
    cb.on_sampled = [&](int s, const at::Tensor& latents) {
      EXPECT_EQ(s, static_cast<int>(sampled.size()));
      sampled.push_back(latents.clone());
    };
    cb.decode = [&](const at::Tensor& latents) {
      if (++decodes == 2) throw Error("simulated: decode out of memory");
      return pipeline::decode_latents(*vae_, latents, p.tiling);
    };
    EXPECT_THROW(pipeline::run_section_loop(*transformer_, *vae_, in, p, cb), Error);
    ASSERT_EQ(sampled.size(), 2u) << "the second section's latents were not handed out";
    for (std::size_t s = 0; s < 2; ++s)
      EXPECT_LE(max_abs_diff(sampled[s], full.section_latents[s]), 1e-6);
  }
}

TEST_F(SectionLoopResume, RejectsSavedLatentsOfAnotherShape) {
  pipeline::SectionLoopInputs in = inputs();
  in.start_latent = at::zeros({1, 16, 1, 6, 8});
  in.resume_sections =
      pipeline::ResumedSections::of({at::zeros({1, 16, 3, 6, 8})});  // window 2, not 3
  try {
    run(in, params(pipeline::LoopVariant::kF1));
    ADD_FAILURE() << "no error for saved latents of the wrong shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("section 1"), std::string::npos) << e.what();
  }
  in.resume_sections = pipeline::ResumedSections::of(
      std::vector<at::Tensor>(4, at::zeros({1, 16, 2, 6, 8})));  // more than the job's 3
  EXPECT_THROW(run(in, params(pipeline::LoopVariant::kF1)), Error);
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("framesmith_job_store_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(std::random_device{}()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  GenerationRequest request() const {
    GenerationRequest r;
    r.model_dir = "/models/x";
    r.prompt = "a cat";
    r.seconds = 0.8;  // window 2: 24 frames / 8 = 3 sections
    r.latent_window = 2;
    r.steps = 3;
    r.seed = 99;
    r.variant = TransformerVariant::kF1;
    r.job_dir = dir_.string();
    return r;
  }

  fs::path dir_;
};

TEST_F(JobStoreTest, SavesAndResumes) {
  GenerationRequest req = request();
  const at::Tensor image = at::randint(0, 256, {48, 64, 3}, at::kByte);
  const at::Tensor start = at::randn({1, 16, 1, 6, 8});
  sampling::HunyuanConditioning cond;
  cond.positive = {at::randn({1, 7, 32}), at::ones({1, 7}, at::kLong), at::randn({1, 16})};
  cond.negative = {at::zeros({1, 7, 32}), at::zeros({1, 7}, at::kLong), at::zeros({1, 16})};
  cond.image_embeddings = at::randn({1, 5, 24});
  std::vector<at::Tensor> sections = {at::randn({1, 16, 2, 6, 8}), at::randn({1, 16, 2, 6, 8})};
  {
    pipeline::JobStore store(req);
    EXPECT_TRUE(fs::exists(job_params_path(dir_.string())));
    EXPECT_EQ(inspect_job_folder(dir_.string()).sections_total, 3);
    store.save_start_image(image);
    store.save_conditioning(cond);
    store.save_start_latent(start);
    EXPECT_EQ(store.save_section(0, 3, sections[0]), job_section_path(dir_.string(), 0));
    EXPECT_EQ(store.latent_frames(), 3);  // F1: the start latent and two new frames
    store.save_section(1, 3, sections[1]);
    EXPECT_EQ(store.latent_frames(), 5);
  }
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_NE(e.path().extension(), ".tmp") << "left behind: " << e.path();
  const JobFolderInfo info = inspect_job_folder(dir_.string());
  EXPECT_TRUE(info.has_job);
  EXPECT_EQ(info.sections_done, 2);
  EXPECT_FALSE(info.finished());

  GenerationRequest caller;
  caller.job_dir = dir_.string();
  caller.resume = true;
  caller.device = "cuda:1";
  const GenerationRequest back = pipeline::resumed_request(caller);
  EXPECT_EQ(back.model_dir, "/models/x");
  EXPECT_EQ(back.prompt, "a cat");
  EXPECT_EQ(back.seed, 99u);
  EXPECT_EQ(back.steps, 3);
  EXPECT_EQ(back.variant, TransformerVariant::kF1);
  EXPECT_EQ(back.device, "cuda:1");
  EXPECT_TRUE(back.resume);
  ASSERT_EQ(back.image.count, 1);
  EXPECT_EQ(back.image.width, 64);
  EXPECT_EQ(back.image.height, 48);
  EXPECT_EQ(0, std::memcmp(back.image.rgb.data(), image.contiguous().data_ptr(), 48 * 64 * 3));

  pipeline::JobStore resumed(back);
  ASSERT_TRUE(resumed.conditioning().has_value());
  EXPECT_EQ(max_abs_diff(resumed.conditioning()->positive.embeds, cond.positive.embeds), 0.0);
  EXPECT_EQ(max_abs_diff(resumed.conditioning()->image_embeddings, cond.image_embeddings), 0.0);
  EXPECT_EQ(max_abs_diff(resumed.start_latent(), start), 0.0);
  // The sections are read when asked for, not held by the store.
  const pipeline::ResumedSections saved = resumed.resumed_sections();
  ASSERT_EQ(saved.count, 2);
  EXPECT_EQ(max_abs_diff(saved.load(1), sections[1]), 0.0);
  EXPECT_EQ(max_abs_diff(saved.load(0), sections[0]), 0.0);
  EXPECT_EQ(resumed.latent_frames(), 5);
  // A section file that goes away after the check is an error naming it when it is read.
  fs::remove(job_section_path(dir_.string(), 1));
  try {
    saved.load(1);
    ADD_FAILURE() << "a removed section was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("section_0001"), std::string::npos) << e.what();
  }
}

// A section file cut short by a kill is not "kept": it is named, set aside with the sections
// after it, and made again; temporaries of a dead writer are cleaned up.
TEST_F(JobStoreTest, TruncatedSectionIsNamedAndRedone) {
  GenerationRequest req = request();
  const std::vector<at::Tensor> sections = {
      at::randn({1, 16, 2, 6, 8}), at::randn({1, 16, 2, 6, 8}), at::randn({1, 16, 2, 6, 8})};
  {
    pipeline::JobStore store(req);
    store.save_start_image(at::randint(0, 256, {48, 64, 3}, at::kByte));
    for (int s = 0; s < 3; ++s) store.save_section(s, 3, sections[s]);
  }
  const std::string cut = job_section_path(dir_.string(), 1);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  std::ofstream(dir_ / "clip_4.mp4.partial") << "half a video";
  std::ofstream(dir_ / "section_0001.safetensors.tmp") << "half a section";

  const JobFolderInfo info = inspect_job_folder(dir_.string());
  EXPECT_EQ(info.sections_done, 1);
  ASSERT_EQ(info.damaged_sections.size(), 1u);
  EXPECT_EQ(info.damaged_sections[0], cut);

  GenerationRequest caller;
  caller.job_dir = dir_.string();
  caller.resume = true;
  pipeline::JobStore resumed(pipeline::resumed_request(caller));
  ASSERT_EQ(resumed.resumed_sections().count, 1);
  EXPECT_EQ(max_abs_diff(resumed.resumed_sections().load(0), sections[0]), 0.0);
  EXPECT_FALSE(fs::exists(cut));
  EXPECT_TRUE(fs::exists(cut + ".damaged"));
  EXPECT_FALSE(fs::exists(job_section_path(dir_.string(), 2))) << "a later section survived";
  EXPECT_EQ(resumed.damaged_sections().size(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "clip_4.mp4.partial"));
  EXPECT_FALSE(fs::exists(dir_ / "section_0001.safetensors.tmp"));
}

// Editing job.json between stop and resume used to mix old sections with new settings: each
// section remembers the parameters it was made with, and a resume with others is refused,
// naming what changed.
TEST_F(JobStoreTest, EditedParametersAreRefusedOnResume) {
  GenerationRequest req = request();
  {
    pipeline::JobStore store(req);
    store.save_start_image(at::randint(0, 256, {48, 64, 3}, at::kByte));
    store.save_section(0, 3, at::randn({1, 16, 2, 6, 8}));
  }
  GenerationRequest caller;
  caller.job_dir = dir_.string();
  caller.resume = true;
  caller.device = "cuda:0";  // where it runs may change
  caller.vram_budget_bytes = 1 << 30;
  EXPECT_NO_THROW(pipeline::JobStore(pipeline::resumed_request(caller)));

  GenerationRequest edited = req;
  edited.steps = 4;
  edited.seed = 7;
  std::ofstream(job_params_path(dir_.string()), std::ios::trunc) << request_to_json(edited);
  try {
    pipeline::JobStore store(pipeline::resumed_request(caller));
    ADD_FAILURE() << "an edited job.json was resumed";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("job.json was changed after section 1"), std::string::npos) << m;
    EXPECT_NE(m.find("seed 99 -> 7"), std::string::npos) << m;
    EXPECT_NE(m.find("steps 3 -> 4"), std::string::npos) << m;
  }
  EXPECT_TRUE(fs::exists(job_section_path(dir_.string(), 0))) << "the refusal removed work";
}

TEST_F(JobStoreTest, FreshJobRemovesAnEarlierJobsFilesOnly) {
  GenerationRequest req = request();
  {
    pipeline::JobStore store(req);
    store.save_section(0, 3, at::zeros({1, 16, 2, 6, 8}));
  }
  std::ofstream(dir_ / "video_3.mp4") << "a video";
  std::ofstream(dir_ / "section_0001.safetensors.tmp") << "half a file";
  req.seed = 7;
  pipeline::JobStore fresh(req);
  EXPECT_FALSE(fs::exists(job_section_path(dir_.string(), 0)));
  EXPECT_FALSE(fs::exists(dir_ / "section_0001.safetensors.tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "video_3.mp4"));
  EXPECT_EQ(inspect_job_folder(dir_.string()).sections_done, 0);
  GenerationRequest back;
  std::ifstream in(job_params_path(dir_.string()));
  request_from_json(std::string(std::istreambuf_iterator<char>(in), {}), back);
  EXPECT_EQ(back.seed, 7u);
}

TEST_F(JobStoreTest, ErrorsNameTheFolder) {
  EXPECT_FALSE(inspect_job_folder(dir_.string()).has_job);
  try {
    load_job_request(dir_.string());
    ADD_FAILURE() << "no error for a folder without a job";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir_.string()), std::string::npos) << e.what();
  }
  // A file where the folder should be: cannot be made, also for root.
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  GenerationRequest req = request();
  req.job_dir = (dir_ / "file" / "job").string();
  try {
    pipeline::JobStore store(req);
    ADD_FAILURE() << "no error for a job folder below a file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(req.job_dir), std::string::npos) << e.what();
  }
}

}  // namespace
