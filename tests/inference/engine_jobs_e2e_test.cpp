// framesmith-engine's generate and resume, as the GPU machine runs them: a PPM start image in,
// one PPM per frame out, the same video as generate() makes for the same request, an events file,
// and a resumed job that makes the same frames again.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framesmith/engine_cli.h"
#include "framesmith/events.h"
#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "image/ppm.h"
#include "io/safetensors.h"
#include "support/engine_commands.h"

using namespace framesmith;
using framesmith::test::CmdResult;
using framesmith::test::gradient;
namespace fs = std::filesystem;

namespace {

CmdResult run(const std::vector<std::string>& args) {
  return test::run_command(run_engine_job_command, args);
}

std::string temp_dir(const char* stem) {
  std::string tmpl = std::string("/tmp/") + stem + "_XXXXXX";
  return ::mkdtemp(tmpl.data());
}

std::string tiny_dir() {
  static const std::string dir = [] {
    const std::string d = temp_dir("fs_engine_jobs") + "/tiny";
    make_tiny_model(d, 0);
    return d;
  }();
  return dir;
}

// The request the command line below asks for (the engine's defaults otherwise).
GenerationRequest request_of_the_command(const Frames& image) {
  GenerationRequest r;
  r.model_dir = tiny_dir();
  r.image = image;
  r.prompt = "a gradient that moves";
  r.seconds = 1.0;
  r.steps = 2;
  r.latent_window = 2;
  r.resolution = 64;
  r.cache = StepCache::kNone;
  return r;
}

std::vector<std::string> command(const std::string& image, const std::string& out) {
  return {"generate",
          "--model",
          tiny_dir(),
          "--image",
          image,
          "--prompt",
          "a gradient that moves",
          "--seconds",
          "1",
          "--steps",
          "2",
          "--window",
          "2",
          "--resolution",
          "64",
          "--no-teacache",
          "--out",
          out,
          "--quiet"};
}

std::string frame_file(const std::string& dir, int i) {
  char name[32];
  std::snprintf(name, sizeof name, "/frame_%05d.ppm", i);
  return dir + name;
}

// Every frame file of `dir` equals the video's frame, and there is none beyond it.
void expect_frames_equal(const std::string& dir, const Frames& video) {
  ASSERT_GT(video.count, 0);
  for (int i = 0; i < video.count; ++i) {
    const Frames f = image::read_ppm(frame_file(dir, i));
    ASSERT_EQ(f.width, video.width);
    ASSERT_EQ(f.height, video.height);
    const std::vector<std::uint8_t> expected(video.frame(i),
                                             video.frame(i) + std::size_t(f.width) * f.height * 3);
    ASSERT_EQ(f.rgb, expected) << "frame " << i;
  }
  EXPECT_FALSE(fs::exists(frame_file(dir, video.count)));
}

}  // namespace

TEST(EngineJobs, GenerateWritesTheVideoThatGenerateMakesAndResumeMakesItAgain) {
  const std::string work = temp_dir("fs_engine_gen");
  const Frames start = gradient(96, 64);
  image::write_ppm(work + "/start.ppm", start.rgb.data(), start.width, start.height);
  const GenerationResult whole = generate(request_of_the_command(start), {});
  ASSERT_EQ(whole.status, StatusCode::kOk) << whole.message;

  std::vector<std::string> args = command(work + "/start.ppm", work + "/frames");
  args.insert(args.end(), {"--events", work + "/events.jsonl"});
  const CmdResult r = run(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(whole.video.count) + " frames"), std::string::npos) << r.out;
  expect_frames_equal(work + "/frames", whole.video);
  EXPECT_EQ(image::read_ppm(work + "/frames/start.ppm").rgb, whole.input_image.rgb);

  // The events file is the job's own account, one event a line, the job's end among them.
  std::ifstream events(work + "/events.jsonl");
  std::string line;
  int lines = 0, plans = 0;
  bool finished = false;
  while (std::getline(events, line)) {
    const Event e = event_from_json_line(line);
    ++lines;
    if (e.type == EventType::kPlan) ++plans;
    if (e.type == EventType::kFinished) finished = true;
  }
  EXPECT_GT(lines, 10);
  EXPECT_GT(plans, 0);  // the memory governor's plan of each phase
  EXPECT_TRUE(finished);

  // A job killed after two of its four sections: the folder keeps sections 1-2 only.
  const std::string job = work + "/frames/job";
  ASSERT_EQ(inspect_job_folder(job).sections_total, 4);
  fs::remove(job_section_path(job, 2));
  fs::remove(job_section_path(job, 3));
  ASSERT_EQ(inspect_job_folder(job).sections_done, 2);
  // A fresh generate into it is refused: it would lose the two sections.
  const CmdResult refused = run(command(work + "/start.ppm", work + "/frames"));
  EXPECT_EQ(refused.rc, 1);
  EXPECT_NE(refused.err.find("framesmith-engine resume " + job), std::string::npos) << refused.err;

  const CmdResult resumed = run({"resume", job, "--out", work + "/resumed", "--quiet"});
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("2 of 4 sections resumed"), std::string::npos) << resumed.out;
  expect_frames_equal(work + "/resumed", whole.video);
}

TEST(EngineJobs, BadInputIsOneClearLine) {
  const std::string work = temp_dir("fs_engine_bad");
  {
    std::ofstream png(work + "/start.png", std::ios::binary);
    png << "\x89PNG\r\n\x1a\n not really";
  }
  CmdResult r = run(command(work + "/start.png", work + "/frames"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("not a binary PPM image"), std::string::npos) << r.err;

  r = run({"generate", "--model", tiny_dir(), "--imgae", "x.ppm"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("unknown option \"--imgae\""), std::string::npos) << r.err;

  r = run({"generate", "--model", tiny_dir(), "--prompt", "p", "--out", work + "/o"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--image FILE.ppm is required"), std::string::npos) << r.err;

  r = run({"resume", work + "/nothing", "--out", work + "/o"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no job here"), std::string::npos) << r.err;

  EXPECT_EQ(run({"inspect-model", tiny_dir()}).rc, -1);  // not one of these two
}

namespace {

// A LoRA for the tiny transformer (diffusers names): one attention projection.
std::string write_tiny_lora(const std::string& path, bool with_nan) {
  const io::TensorStore store = io::TensorStore::open(tiny_dir() + "/transformer");
  const std::vector<std::int64_t> shape = store.info("transformer_blocks.0.attn.to_q.weight").shape;
  at::Generator g = at::detail::createCPUGenerator(5);
  at::Tensor a = at::randn({4, shape[1]}, g, at::kFloat);
  at::Tensor b = at::randn({shape[0], 4}, g, at::kFloat).mul(0.5);
  if (with_nan) b[0][0] = NAN;
  io::save_safetensors(path, {{"transformer.transformer_blocks.0.attn.to_q.lora_A.weight", a},
                              {"transformer.transformer_blocks.0.attn.to_q.lora_B.weight", b}});
  return path;
}

// A scratch folder holding start.ppm, the 96 x 64 gradient the command line starts from.
std::string folder_with_start(const char* stem) {
  const std::string work = temp_dir(stem);
  const Frames start = gradient(96, 64);
  image::write_ppm(work + "/start.ppm", start.rgb.data(), start.width, start.height);
  return work;
}

// The `count` frame files of `dir` as one video.
Frames read_frames(const std::string& dir, int count) {
  Frames video;
  for (int i = 0; i < count; ++i) {
    const Frames f = image::read_ppm(frame_file(dir, i));
    video.width = f.width;
    video.height = f.height;
    video.rgb.insert(video.rgb.end(), f.rgb.begin(), f.rgb.end());
  }
  video.count = count;
  return video;
}

// What the command line makes without LoRA, end frame or timed prompt (made once).
const Frames& plain_video() {
  static const GenerationResult r = generate(request_of_the_command(gradient(96, 64)), {});
  EXPECT_EQ(r.status, StatusCode::kOk) << r.message;
  return r.video;
}

std::vector<Event> read_events(const std::string& path) {
  std::ifstream in(path);
  std::vector<Event> out;
  for (std::string line; std::getline(in, line);) out.push_back(event_from_json_line(line));
  return out;
}

}  // namespace

TEST(EngineJobs, LoraIsReportedChangesTheVideoAndResumesWithIt) {
  const std::string work = folder_with_start("fs_engine_lora");
  const Frames& plain = plain_video();
  const std::string lora = write_tiny_lora(work + "/style.safetensors", false);

  std::vector<std::string> args = command(work + "/start.ppm", work + "/frames");
  args.insert(args.end(),
              {"--lora", "style:0.8", "--lora-dir", work, "--events", work + "/events.jsonl"});
  const CmdResult r = run(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  int lora_events = 0;
  for (const Event& e : read_events(work + "/events.jsonl")) {
    if (e.type != EventType::kLora) continue;
    ++lora_events;
    EXPECT_EQ(e.text("file"), lora);
    EXPECT_EQ(e.text("layout"), "diffusers");
    EXPECT_EQ(e.text("applied"), "merged into the weights at load");
    EXPECT_EQ(e.number("modules"), 1);
    EXPECT_EQ(e.number("strength"), 0.8);
  }
  EXPECT_EQ(lora_events, 1);
  // The LoRA changed the pictures: some frame differs from the run without it.
  bool differs = false;
  for (int i = 0; i < plain.count && !differs; ++i) {
    const Frames f = image::read_ppm(frame_file(work + "/frames", i));
    differs = std::memcmp(f.rgb.data(), plain.frame(i), f.rgb.size()) != 0;
  }
  EXPECT_TRUE(differs);

  // Killed after two sections, resumed: the saved LoRA is applied again, same frames.
  const std::string job = work + "/frames/job";
  fs::remove(job_section_path(job, 2));
  fs::remove(job_section_path(job, 3));
  const CmdResult resumed = run({"resume", job, "--out", work + "/resumed", "--quiet"});
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  expect_frames_equal(work + "/resumed", read_frames(work + "/frames", plain.count));
}

TEST(EngineJobs, BadLoraStopsTheJobBeforeAnythingIsEncodedOrSampled) {
  const std::string work = folder_with_start("fs_engine_badlora");
  std::vector<std::string> args = command(work + "/start.ppm", work + "/frames");
  args.insert(args.end(), {"--lora", write_tiny_lora(work + "/nan.safetensors", true), "--events",
                           work + "/events.jsonl"});
  const CmdResult r = run(args);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("NaN"), std::string::npos) << r.err;
  for (const Event& e : read_events(work + "/events.jsonl"))
    EXPECT_TRUE(e.type != EventType::kProgress || (e.phase != "text" && e.phase != "sampling"))
        << e.phase;
  args = command(work + "/start.ppm", work + "/frames2");
  args.insert(args.end(), {"--lora", work + "/style.safetensors:1e9"});
  write_tiny_lora(work + "/style.safetensors", false);
  const CmdResult big = run(args);
  EXPECT_EQ(big.rc, 1);
  EXPECT_NE(big.err.find("strength"), std::string::npos) << big.err;
}

TEST(EngineJobs, EndFrameChangesTheVideoIsSaidWhenCroppedAndResumes) {
  const std::string work = folder_with_start("fs_engine_end");
  const Frames start = gradient(96, 64);
  // An end picture of another aspect ratio, and other colours than the start's.
  Frames end = gradient(64, 64);
  for (std::uint8_t& v : end.rgb) v = static_cast<std::uint8_t>(255 - v);
  image::write_ppm(work + "/end.ppm", end.rgb.data(), end.width, end.height);
  const Frames& plain = plain_video();

  std::vector<std::string> args = command(work + "/start.ppm", work + "/frames");
  args.insert(args.end(), {"--end-image", work + "/end.ppm", "--end-strength", "0.7", "--events",
                           work + "/events.jsonl"});
  const CmdResult r = run(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  int notices = 0;
  for (const Event& e : read_events(work + "/events.jsonl"))
    if (e.type == EventType::kNotice) {
      ++notices;
      EXPECT_NE(e.text("message").find("centre-cropped"), std::string::npos) << e.text("message");
    }
  EXPECT_EQ(notices, 1);
  // The same request through the API gives the same frames; the end frame changed them.
  GenerationRequest with_end = request_of_the_command(start);
  with_end.end_image = end;
  with_end.end_frame_strength = 0.7;
  const GenerationResult api = generate(with_end, {});
  ASSERT_EQ(api.status, StatusCode::kOk) << api.message;
  expect_frames_equal(work + "/frames", api.video);
  bool differs = false;
  for (int i = 0; i < plain.count && !differs; ++i)
    differs = std::memcmp(plain.frame(i), api.video.frame(i),
                          std::size_t(plain.width) * plain.height * 3) != 0;
  EXPECT_TRUE(differs);
  // Killed after two sections: the resume takes the saved end latent, same frames.
  const std::string job = work + "/frames/job";
  EXPECT_TRUE(fs::exists(job + "/end_image.safetensors"));
  EXPECT_TRUE(fs::exists(job + "/end_latent.safetensors"));
  fs::remove(job_section_path(job, 2));
  fs::remove(job_section_path(job, 3));
  const CmdResult resumed = run({"resume", job, "--out", work + "/resumed", "--quiet"});
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  expect_frames_equal(work + "/resumed", api.video);

  // F1 has no end to hold; a strength outside 0..1 is a typing slip.
  args = command(work + "/start.ppm", work + "/f1");
  args.insert(args.end(), {"--end-image", work + "/end.ppm", "--variant", "f1"});
  CmdResult bad = run(args);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("needs the original model"), std::string::npos) << bad.err;
  args = command(work + "/start.ppm", work + "/strong");
  args.insert(args.end(), {"--end-image", work + "/end.ppm", "--end-strength", "1.5"});
  bad = run(args);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("end-frame strength"), std::string::npos) << bad.err;
}

TEST(EngineJobs, TimedPromptsAreEncodedOnceEachSaidAndResume) {
  const std::string work = folder_with_start("fs_engine_timed");
  const Frames& plain = plain_video();
  // 4 sections of 5 frames (1/6 s each): the prompt changes half-way.
  std::vector<std::string> args = command(work + "/start.ppm", work + "/frames");
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--prompt") args[i + 1] = "[0s: a gradient that moves] [0.5s: it turns red]";
  args.insert(args.end(), {"--blend-sections", "2", "--events", work + "/events.jsonl"});
  const CmdResult r = run(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  std::string note;
  for (const Event& e : read_events(work + "/events.jsonl"))
    if (e.type == EventType::kNotice) note = e.text("message");
  EXPECT_NE(note.find("timed prompts: 2 distinct"), std::string::npos) << note;
  EXPECT_NE(note.find("\"it turns red\""), std::string::npos) << note;
  const std::string job = work + "/frames/job";
  EXPECT_TRUE(fs::exists(job + "/conditioning_prompt1.safetensors"));
  EXPECT_FALSE(fs::exists(job + "/conditioning_prompt2.safetensors"));
  // The first half's prompt is the plain run's: the second half differs from it.
  bool differs = false;
  for (int i = 0; i < plain.count && !differs; ++i) {
    const Frames f = image::read_ppm(frame_file(work + "/frames", i));
    differs = std::memcmp(f.rgb.data(), plain.frame(i), f.rgb.size()) != 0;
  }
  EXPECT_TRUE(differs);
  // Killed after a section: the saved encodings are used again, the same frames come out.
  for (int s = 1; s < 4; ++s) fs::remove(job_section_path(job, s));
  const CmdResult resumed = run({"resume", job, "--out", work + "/resumed", "--quiet"});
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  expect_frames_equal(work + "/resumed", read_frames(work + "/frames", plain.count));

  // Past the video's end, overlapping: refused before anything runs.
  for (const char* bad : {"[0s: a] [3s: b]", "[0s-0.8s: a] [0.5s: b]"}) {
    args = command(work + "/start.ppm", work + "/bad");
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--prompt") args[i + 1] = bad;
    const CmdResult refused = run(args);
    EXPECT_EQ(refused.rc, 1) << bad;
    EXPECT_NE(refused.err.find("timed prompt: "), std::string::npos) << refused.err;
  }
}

// A job file (the JSON the studio writes beside each video) runs unchanged: the same frames as
// the options it holds.
TEST(EngineJobs, JobFileRunsUnchanged) {
  const std::string work = folder_with_start("fs_engine_jobfile");
  {
    std::ofstream job(work + "/job.json");
    job << request_to_json(request_of_the_command(gradient(96, 64)));
  }
  const CmdResult r = run({"generate", "--job", work + "/job.json", "--image", work + "/start.ppm",
                           "--out", work + "/frames", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_frames_equal(work + "/frames", plain_video());
}
