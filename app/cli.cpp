#include "cli.h"

#include <QDir>
#include <QFileInfo>
#include <cstdio>
#include <fstream>

#include "download_command.h"
#include "framesmith/console_job.h"
#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "framesmith/generation_options.h"
#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "image_io.h"
#include "job_output.h"
#include "png_export.h"
#include "video_input.h"
#include "video_reader.h"
#include "video_writer.h"

namespace framesmith::app {
namespace {

const char* kUsage =
    "usage: framesmith-cli COMMAND [options]\n\n"
    "commands:\n"
    "  generate --model DIR --image FILE --prompt TEXT --out FILE.mp4 [options]\n"
    "           [--negative-prompt TEXT] [--variant original|f1] [--seconds 5] [--seed 31337]\n"
    "           [--steps 25] [--gs 10] [--cfg 1] [--rs 0] [--window 9] [--resolution 640]\n"
    "           [--cache none|teacache|magcache] [--teacache|--no-teacache] [--crf 16]\n"
    "           [--teacache-threshold 0.15] [--magcache-threshold 0.1]\n"
    "           [--magcache-max-skips 2] [--magcache-retention 0.25] [--device cpu|cuda[:N]]\n"
    "           [--vram-budget SIZE] [--preserve SIZE] [--conditioning FILE]\n"
    "           [--lora FILE|NAME[:STRENGTH]]... [--lora-dir DIR]\n"
    "           [--end-image FILE [--end-strength 1]]  (original model: the video's last frame)\n"
    "           [--blend-sections 0]  timed prompts: --prompt \"[0s: a cat sits] [2s: it jumps]\"\n"
    "           [--video FILE [--extend forward|backward] [--video-context 5]]  continue a\n"
    "           video instead of starting from --image: the clip, then --seconds more\n"
    "           [--events FILE.jsonl] [--params|--job FILE.json|VIDEO.mp4] [--job-dir DIR]\n"
    "           [--restart]\n"
    "           the job folder (default: <out stem>.job/) keeps every finished section and the\n"
    "           video so far (<job>_<latent frames>.mp4)\n"
    "  resume JOBDIR [--out FILE.mp4] [--model DIR] [--device D] [--vram-budget SIZE]\n"
    "           [--preserve SIZE] [--crf N] [--events FILE.jsonl] [--quiet]\n"
    "           continue a stopped, failed or killed job: same video as an uninterrupted run\n"
    "  download framepack|framepack-f1 [--to DIR|hf|hf:DIR] [--dry-run]\n"
    "           the files FramePack uses, from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN,\n"
    "           proxies from the environment), resumable; default target: the hub cache when\n"
    "           it exists, else <data>/framesmith/models/<set>\n"
    "  export-frames VIDEO.mp4 DIR [--frame N]\n"
    "           every frame (or frame N, from 0) as DIR/<video stem>_00000.png, ...\n";

int crf_option(const CommandOptions& o, int fallback) {
  const int crf = static_cast<int>(o.number("--crf", fallback));
  if (crf < 0 || crf > 51) throw Error("--crf must be 0..51");
  return crf;
}

// "kept 2 of 3 sections in DIR (continue with: framesmith-cli resume DIR)" for error lines.
std::string kept_note(const std::string& job_dir, const std::string& last_partial) {
  JobFolderInfo info;
  try {
    info = inspect_job_folder(job_dir);
  } catch (const std::exception&) {
    return std::string();
  }
  if (!info.has_job) return std::string();
  std::string note = "; kept " + std::to_string(info.sections_done) + " of " +
                     std::to_string(info.sections_total) + " sections in " + job_dir;
  if (!last_partial.empty()) note += ", video so far " + last_partial;
  return note + " (continue with: framesmith-cli resume " + job_dir + ")";
}

// Runs a fresh or resumed job: the job folder and the partial videos as the sections finish,
// the final video at the end. Every failure is one line on `err`; nothing already written is
// removed.
int run_job(const GenerationRequest& req, JobOutput& output, const CommandOptions& o,
            std::ostream& out, std::ostream& err) {
  int width = 0, height = 0;
  quiet_ffmpeg_logging();  // x264's statistics would bury the progress and the error line
  GenerationCallbacks cb;
  // Write errors thrown here stop the job; generate() reports them as its message.
  cb.on_input_image = [&](const Frames& image) { output.write_input_image(image); };
  // Each chunk goes to disk as it comes (final frames as a segment, the tail replaced): the CLI
  // never holds more than one section's frames.
  cb.on_chunk = [&](const VideoChunk& c) {
    output.write_chunk(c);
    const Frames& f = c.final_frames.count ? c.final_frames : c.tail;
    width = f.width;
    height = f.height;
  };
  const ConsoleResult run =
      run_console_job(req, cb, {"framesmith-cli", o.get("--events"), o.flag("--quiet")}, err);
  const GenerationResult& res = run.result;
  if (res.status != StatusCode::kOk) {
    err << "error: " << res.message << kept_note(output.job_dir(), output.last_partial()) << "\n";
    return run.exit_status();
  }
  try {
    output.write_final_from_segments();
  } catch (const std::exception& e) {
    err << "error: " << e.what() << kept_note(output.job_dir(), output.last_partial()) << "\n";
    return 1;
  }
  out << "video: " << output.video_path() << " (" << output.segment_frames() << " frames, " << width
      << "x" << height;
  if (res.sections_resumed)
    out << ", " << res.sections_resumed << " of " << res.sections_total
        << " sections resumed from the job folder";
  out << ")\n";
  return 0;
}

// --video FILE, --extend forward|backward (the model variant that goes with it), --video-context.
void apply_video_options(const CommandOptions& o, GenerationRequest& req) {
  if (o.has("--video")) req.input_video_source.path = o.get("--video");
  if (o.has("--video-context"))
    req.video_context_frames = static_cast<int>(o.number("--video-context", 5));
  if (!o.has("--extend")) return;
  if (req.input_video_source.path.empty()) throw Error("--extend needs --video FILE");
  const std::string e = o.get("--extend");
  if (e != "forward" && e != "backward")
    throw Error("--extend must be forward or backward, not \"" + e + "\"");
  const TransformerVariant v =
      e == "forward" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  if (o.has("--variant") && v != req.variant)
    throw Error("--extend " + e + " runs the " + (e == "forward" ? "F1" : "original") +
                " model, but --variant says " + o.get("--variant") + ": give one of them");
  req.variant = v;
}

int cmd_generate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"framesmith-cli generate",
       "Generates a video (MP4) from a start image and a prompt; the job folder keeps every "
       "finished section.",
       {},
       "",
       option_specs(
           join_options({generation_value_options(),
                         runtime_value_options(),
                         {"--image", "--end-image", "--video", "--extend", "--video-context",
                          "--crf", "--out", "--events", "--params", "--job", "--job-dir"}}),
           join_options({generation_flag_options(), {"--quiet", "--restart"}}))},
      args, 1);
  if (answered_help(o, out)) return 0;
  GenerationRequest req;
  // --job FILE.json: the job file the studio writes (also --params, which takes a video too).
  const std::string params = o.has("--job") ? o.get("--job") : o.get("--params");
  if (!params.empty()) {
    std::ifstream in(params, std::ios::binary);
    if (!in) throw Error(params + ": cannot read parameters file");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    request_from_json(read_params_text(params, text), req);
  }
  apply_runtime_options(o, req);
  apply_generation_options(o, req);
  apply_video_options(o, req);
  const bool video = !req.input_video_source.path.empty();
  if (req.model_dir.empty()) throw Error("--model DIR is required");
  if (!video && !o.has("--image")) throw Error("--image FILE (or --video FILE) is required");
  if (video && o.has("--image"))
    throw Error(
        "give --image FILE or --video FILE, not both: a video extension starts from "
        "the video's own frames");
  if (!o.has("--out")) throw Error("--out FILE.mp4 is required");
  if (req.prompt.empty() && req.conditioning_file.empty())
    throw Error("give --prompt TEXT or --conditioning FILE.safetensors");
  validate_request(req);
  const int crf = crf_option(o, 16);
  make_paths_absolute(req);
  req.job_dir = o.has("--job-dir") ? o.get("--job-dir") : default_job_dir(o.get("--out"));
  refuse_unfinished_job(req.job_dir, o.flag("--restart"), "framesmith-cli");
  if (video) {
    for (const std::string& note : load_input_clip(req)) err << "note: " << note << "\n";
  } else {
    req.image = load_image_rgb(o.get("--image"));
  }
  if (o.has("--end-image")) req.end_image = load_image_rgb(o.get("--end-image"));
  validate_request(req);  // with the end image: the original model only
  JobOutput output(o.get("--out"), crf, req, req.job_dir);
  return run_job(req, output, o, out, err);
}

int cmd_resume(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"framesmith-cli resume",
       "Continues a stopped, failed or killed job from its folder: the same video as an "
       "uninterrupted run.",
       {"JOBDIR"},
       "",
       option_specs(join_options({runtime_value_options(), {"--out", "--crf", "--events"}}),
                    {"--quiet"})},
      args, 1);
  if (answered_help(o, out)) return 0;
  const std::string dir = o.positionals.at(0);
  const JobFolderInfo info = inspect_job_folder(dir);
  if (!info.has_job) throw Error(dir + ": no job here (job.json is missing)");
  GenerationRequest req = load_job_request(dir);  // resume = true
  apply_runtime_options(o, req);
  make_paths_absolute(req);
  for (const std::string& note : load_input_clip(req)) err << "note: " << note << "\n";
  SavedOutput saved;
  if (o.has("--out")) {
    saved.video_path = o.get("--out");
    try {
      saved.crf = read_saved_output(dir).crf;
    } catch (const Error&) {
    }
  } else {
    saved = read_saved_output(dir);
  }
  const int crf = crf_option(o, saved.crf);
  if (!o.flag("--quiet")) {
    err << "resuming " << dir << ": " << info.sections_done << " of " << info.sections_total
        << " sections saved\n";
    for (const std::string& d : info.damaged_sections)
      err << "  " << d << " is damaged (cut short): it is set aside as .damaged and made again\n";
  }
  JobOutput output(saved.video_path, crf, req, dir);
  return run_job(req, output, o, out, err);
}

// export-frames VIDEO DIR [--frame N]: every frame (or frame N, 0-based) as PNG files.
int cmd_export_frames(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  const CommandOptions o = parse_command({"framesmith-cli export-frames",
                                          "Writes every frame of a video (or frame N, from 0) as "
                                          "PNG files: DIR/<video stem>_00000.png, ...",
                                          {"VIDEO.mp4", "DIR"},
                                          "",
                                          {{"--frame", "only this frame (0-based)", false}}},
                                         args, 1);
  if (answered_help(o, out)) return 0;
  const std::string video = o.positionals.at(0), dir = o.positionals.at(1);
  const std::string stem =
      QFileInfo(QString::fromStdString(video)).completeBaseName().toStdString();
  quiet_ffmpeg_logging();
  VideoReader reader;
  reader.open(video);
  if (!o.has("--frame")) {
    const std::vector<std::string> paths = export_pngs(reader.read_all(), dir, stem);
    out << paths.size() << " frames: " << (paths.empty() ? dir : paths.front()) << " ... "
        << (paths.empty() ? "" : paths.back()) << "\n";
    return 0;
  }
  const double n = o.number("--frame", 0);
  if (n < 0 || n != static_cast<int>(n))
    throw Error("--frame needs a frame number 0, 1, 2, ..., not \"" + o.get("--frame") + "\"");
  const int index = static_cast<int>(n);
  const std::vector<std::uint8_t> rgb = reader.read_frame(index);
  if (!QDir().mkpath(QString::fromStdString(dir)))
    throw Error(dir + ": cannot create the folder for PNG frames");
  char number[16];
  std::snprintf(number, sizeof number, "%05d", index);
  const std::string path = dir + "/" + stem + "_" + number + ".png";
  write_png(rgb.data(), reader.width(), reader.height(), reader.width() * 3, path);
  out << "frame " << index << ": " << path << "\n";
  return 0;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << "framesmith-cli " << engine_version() << "\n\n" << kUsage << engine_commands_help();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    out << "framesmith-cli " << engine_version() << "\n";
    return 0;
  }
  try {
    if (args[0] == "generate") return cmd_generate(args, out, err);
    if (args[0] == "resume") return cmd_resume(args, out, err);
    if (args[0] == "export-frames") return cmd_export_frames(args, out, err);
    if (args[0] == "download") return cmd_download(args, out, err);
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
  const int rc = run_engine_command(args, out, err);
  if (rc == -1) {
    err << "error: unknown command \"" << args[0] << "\" (see --help)\n";
    return 2;
  }
  return rc;
}

}  // namespace framesmith::app
