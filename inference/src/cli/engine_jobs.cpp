// framesmith-engine's `generate` and `resume`: the whole pipeline without Qt or FFmpeg, so that a
// machine with nothing but LibTorch (the lent GPU machine) runs the same job as framesmith-cli.
// The start image is a PPM; the video comes out as one PPM per frame, each written as soon as it
// is final, so the engine holds no more of the video than framesmith-cli does.
#include "framesmith/engine_cli.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "framesmith/console_job.h"
#include "framesmith/error.h"
#include "framesmith/generation_options.h"
#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "image/ppm.h"

namespace framesmith {
namespace {

// The frames of the video in --out as they become final: each at its index in the finished
// video (the original variant's chunks come last part first), the tail rewritten until a later
// section makes it final. Remembers which indices were written, to say whether the video is whole.
class FrameFolder {
 public:
  explicit FrameFolder(std::string dir) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw Error(dir_ + ": cannot create the folder for the frames (" + ec.message() + ")");
  }

  void write_chunk(const VideoChunk& c) {
    if (c.total_frames > 0 && written_.size() != std::size_t(c.total_frames))
      written_.resize(std::size_t(c.total_frames), false);
    write_frames(c.final_frames, c.first_final_frame);
    write_frames(c.tail, c.first_tail_frame);
  }

  void write_start_image(const Frames& image) {
    image::write_ppm(dir_ + "/start.ppm", image.rgb.data(), image.width, image.height);
  }

  std::string frame_path(std::int64_t index) const {
    char name[32];
    std::snprintf(name, sizeof name, "/frame_%05lld.ppm", static_cast<long long>(index));
    return dir_ + name;
  }
  // The first index never written, or -1 when every frame of the video is there.
  std::int64_t first_missing() const {
    for (std::size_t i = 0; i < written_.size(); ++i)
      if (!written_[i]) return std::int64_t(i);
    return written_.empty() ? 0 : -1;
  }
  std::int64_t frames() const { return std::int64_t(written_.size()); }
  int width = 0, height = 0;

 private:
  void write_frames(const Frames& f, std::int64_t first) {
    for (int i = 0; i < f.count; ++i) {
      const std::int64_t index = first + i;
      if (index < 0 || index >= frames())
        throw Error("frame " + std::to_string(index) + " lies outside the video's " +
                    std::to_string(frames()) + " frames");
      image::write_ppm(frame_path(index), f.frame(i), f.width, f.height);
      written_[std::size_t(index)] = true;
      width = f.width;
      height = f.height;
    }
  }
  std::string dir_;
  std::vector<bool> written_;
};

// Runs a fresh or resumed job; every failure is one line on `err`, and what the job folder and
// the frame folder hold stays.
int run_job(const GenerationRequest& req, const CommandOptions& o, std::ostream& out,
            std::ostream& err) {
  FrameFolder frames(o.get("--out"));
  GenerationCallbacks cb;
  cb.on_input_image = [&](const Frames& image) { frames.write_start_image(image); };
  cb.on_chunk = [&](const VideoChunk& c) { frames.write_chunk(c); };
  const ConsoleResult run =
      run_console_job(req, cb, {"framesmith-engine", o.get("--events"), o.flag("--quiet")}, err);
  const GenerationResult& res = run.result;
  if (res.status != StatusCode::kOk) {
    err << "error: " << res.message;
    if (!req.job_dir.empty() && res.sections_done > 0)
      err << "; kept " << res.sections_done << " of " << res.sections_total << " sections in "
          << req.job_dir << " (continue with: framesmith-engine resume " << req.job_dir << " --out "
          << o.get("--out") << ")";
    err << "\n";
    return run.exit_status();
  }
  const std::int64_t missing = frames.first_missing();
  if (missing >= 0) {
    err << "error: the job finished but frame " << missing << " of " << frames.frames()
        << " never came\n";
    return 1;
  }
  out << "frames: " << frames.frame_path(0) << " ... " << frames.frame_path(frames.frames() - 1)
      << " (" << frames.frames() << " frames, " << frames.width << "x" << frames.height;
  if (res.sections_resumed)
    out << ", " << res.sections_resumed << " of " << res.sections_total
        << " sections resumed from the job folder";
  out << ")\n";
  return 0;
}

}  // namespace

std::string engine_job_commands_help() {
  return "  generate --model DIR --image FILE.ppm --prompt TEXT --out DIR [options]\n"
         "           framesmith-cli generate's options but --crf; --params takes FILE.json;\n"
         "           the frames go to DIR/frame_00000.ppm ... as they become final, the cropped\n"
         "           start image to DIR/start.ppm; the job folder is DIR/job unless --job-dir\n"
         "  resume JOBDIR --out DIR [--model DIR] [--device D] [--vram-budget SIZE]\n"
         "           [--preserve SIZE] [--events FILE.jsonl] [--quiet]\n";
}

namespace {

int cmd_generate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"framesmith-engine generate",
       "Generates a video's frames (PPM files, as they become final) from a start image (PPM).",
       {},
       "",
       option_specs(join_options({generation_value_options(),
                                  runtime_value_options(),
                                  {"--image", "--end-image", "--out", "--events", "--params",
                                   "--job", "--job-dir"}}),
                    join_options({generation_flag_options(), {"--quiet", "--restart"}}))},
      args, 1);
  if (answered_help(o, out)) return 0;
  GenerationRequest req;
  const std::string params = o.has("--job") ? o.get("--job") : o.get("--params");  // job file
  if (!params.empty()) {
    std::ifstream in(params, std::ios::binary);
    if (!in) throw Error(params + ": cannot read parameters file");
    request_from_json(std::string(std::istreambuf_iterator<char>(in), {}), req);
  }
  apply_runtime_options(o, req);
  apply_generation_options(o, req);
  if (req.model_dir.empty()) throw Error("--model DIR is required");
  if (!o.has("--image")) throw Error("--image FILE.ppm is required");
  if (!o.has("--out")) throw Error("--out DIR is required (the frames go there)");
  if (req.prompt.empty() && req.conditioning_file.empty())
    throw Error("give --prompt TEXT or --conditioning FILE.safetensors");
  validate_request(req);
  make_paths_absolute(req);
  req.job_dir = o.has("--job-dir") ? o.get("--job-dir") : o.get("--out") + "/job";
  refuse_unfinished_job(req.job_dir, o.flag("--restart"), "framesmith-engine");
  req.image = image::read_ppm(o.get("--image"));
  if (o.has("--end-image")) req.end_image = image::read_ppm(o.get("--end-image"));
  validate_request(req);  // with the end image: the original model only
  return run_job(req, o, out, err);
}

int cmd_resume(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"framesmith-engine resume",
       "Continues a stopped, failed or killed job from its folder: the same frames as an "
       "uninterrupted run.",
       {"JOBDIR"},
       "",
       option_specs(join_options({runtime_value_options(), {"--out", "--events"}}), {"--quiet"})},
      args, 1);
  if (answered_help(o, out)) return 0;
  const std::string dir = o.positionals.at(0);
  if (!o.has("--out")) throw Error("--out DIR is required (the frames go there)");
  const JobFolderInfo info = inspect_job_folder(dir);
  if (!info.has_job) throw Error(dir + ": no job here (job.json is missing)");
  GenerationRequest req = load_job_request(dir);  // resume = true
  apply_runtime_options(o, req);
  make_paths_absolute(req);
  if (!o.flag("--quiet"))
    err << "resuming " << dir << ": " << info.sections_done << " of " << info.sections_total
        << " sections saved\n";
  return run_job(req, o, out, err);
}

}  // namespace

int run_engine_job_command(const std::vector<std::string>& args, std::ostream& out,
                           std::ostream& err) {
  if (args.empty() || (args[0] != "generate" && args[0] != "resume")) return -1;
  try {
    return args[0] == "generate" ? cmd_generate(args, out, err) : cmd_resume(args, out, err);
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace framesmith
