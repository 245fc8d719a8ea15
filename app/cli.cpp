#include "cli.h"

#include <QDir>
#include <QFileInfo>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "framesmith/engine_cli.h"
#include "framesmith/error.h"
#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "framesmith/request_json.h"
#include "framesmith/units.h"
#include "image_io.h"
#include "job_output.h"
#include "png_export.h"
#include "video_reader.h"
#include "video_writer.h"

namespace framesmith::app {
namespace {

std::atomic<bool> g_cancel{false};

std::atomic<int> g_signal{0};  // the signal that stopped the job: its exit status is 128 + it

void on_signal(int sig) {
  g_signal.store(sig);
  g_cancel.store(true);
}

const char* kUsage =
    "usage: framesmith-cli COMMAND [options]\n\n"
    "commands:\n"
    "  generate --model DIR --image FILE --prompt TEXT --out FILE.mp4 [options]\n"
    "           [--negative-prompt TEXT] [--variant original|f1] [--seconds 5] [--seed 31337]\n"
    "           [--steps 25] [--gs 10] [--cfg 1] [--rs 0] [--window 9] [--resolution 640]\n"
    "           [--teacache|--no-teacache] [--crf 16] [--device cpu|cuda[:N]]\n"
    "           [--vram-budget SIZE] [--preserve SIZE] [--conditioning FILE]\n"
    "           [--events FILE.jsonl] [--params FILE.json|VIDEO.mp4] [--job-dir DIR] [--restart]\n"
    "           the job folder (default: <out stem>.job/) keeps every finished section and the\n"
    "           video so far (<job>_<latent frames>.mp4)\n"
    "  resume JOBDIR [--out FILE.mp4] [--model DIR] [--device D] [--vram-budget SIZE]\n"
    "           [--preserve SIZE] [--crf N] [--events FILE.jsonl] [--quiet]\n"
    "           continue a stopped, failed or killed job: same video as an uninterrupted run\n"
    "  export-frames VIDEO.mp4 DIR [--frame N]\n"
    "           every frame (or frame N, from 0) as DIR/<video stem>_00000.png, ...\n";

// Options that take a value; flags are listed separately so typos are caught.
struct Options {
  std::map<std::string, std::string> values;
  std::vector<std::string> flags;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::string get(const std::string& k, const std::string& fallback = "") const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
  bool flag(const std::string& f) const {
    for (const auto& x : flags)
      if (x == f) return true;
    return false;
  }
};

Options parse_options(const std::vector<std::string>& args, std::size_t first,
                      const std::vector<std::string>& value_opts,
                      const std::vector<std::string>& flag_opts) {
  Options o;
  for (std::size_t i = first; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool known = false;
    for (const auto& v : value_opts)
      if (a == v) {
        if (i + 1 >= args.size()) throw Error("option " + a + " needs a value");
        o.values[v] = args[++i];
        known = true;
      }
    for (const auto& f : flag_opts)
      if (a == f) {
        o.flags.push_back(f);
        known = true;
      }
    if (!known) throw Error("unknown option \"" + a + "\" (see --help)");
  }
  return o;
}

double to_double(const Options& o, const std::string& k, double fallback) {
  if (!o.has(k)) return fallback;
  try {
    std::size_t used = 0;
    double v = std::stod(o.get(k), &used);
    if (used == o.get(k).size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("option " + k + " needs a number, not \"" + o.get(k) + "\"");
}

// The generation parameters from the options (over those of --params, or of a resumed job).
void apply_generation_options(const Options& o, GenerationRequest& req) {
  if (o.has("--prompt")) req.prompt = o.get("--prompt");
  if (o.has("--negative-prompt")) req.negative_prompt = o.get("--negative-prompt");
  if (o.has("--variant")) {
    const std::string v = o.get("--variant");
    if (v != "original" && v != "f1") throw Error("--variant must be original or f1");
    req.variant = v == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  }
  req.seconds = to_double(o, "--seconds", req.seconds);
  if (o.has("--seed")) {
    // Exact 64-bit integers (never through a double); -1 draws one, and the job records the seed
    // it used, so that its saved parameters give the same video again.
    const SeedChoice s = parse_seed(o.get("--seed"));
    req.seed = s.random ? random_seed() : s.seed;
  }
  req.steps = static_cast<int>(to_double(o, "--steps", req.steps));
  req.distilled_cfg = to_double(o, "--gs", req.distilled_cfg);
  req.cfg = to_double(o, "--cfg", req.cfg);
  req.cfg_rescale = to_double(o, "--rs", req.cfg_rescale);
  req.latent_window = static_cast<int>(to_double(o, "--window", req.latent_window));
  req.resolution = static_cast<int>(to_double(o, "--resolution", req.resolution));
  req.shift = to_double(o, "--shift", req.shift);
  if (o.flag("--teacache")) req.teacache = true;
  if (o.flag("--no-teacache")) req.teacache = false;
  if (o.has("--conditioning")) req.conditioning_file = o.get("--conditioning");
}

// Where and how the job runs; the same for a fresh and a resumed job.
void apply_runtime_options(const Options& o, GenerationRequest& req) {
  if (o.has("--model")) req.model_dir = o.get("--model");
  if (o.has("--device")) req.device = o.get("--device");
  if (o.has("--vram-budget")) req.vram_budget_bytes = parse_size(o.get("--vram-budget"));
  if (o.has("--preserve")) req.preserved_memory_bytes = parse_size(o.get("--preserve"));
}

// Existing paths made absolute, so that the job's parameters (job folder, sidecar, MP4 metadata)
// still find the model and the conditioning file from another working folder.
void absolute_paths(GenerationRequest& req) {
  for (std::string* p : {&req.model_dir, &req.conditioning_file}) {
    const QFileInfo fi(QString::fromStdString(*p));
    if (!p->empty() && fi.exists()) *p = fi.absoluteFilePath().toStdString();
  }
}

int crf_option(const Options& o, int fallback) {
  const int crf = static_cast<int>(to_double(o, "--crf", fallback));
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
int run_job(const GenerationRequest& req, JobOutput& output, const Options& o, std::ostream& out,
            std::ostream& err) {
  std::unique_ptr<std::ofstream> events;
  if (o.has("--events")) {
    events = std::make_unique<std::ofstream>(o.get("--events"), std::ios::trunc);
    if (!*events) throw Error(o.get("--events") + ": cannot write events file");
  }
  const bool quiet = o.flag("--quiet");
  int width = 0, height = 0;
  quiet_ffmpeg_logging();  // x264's statistics would bury the progress and the error line

  GenerationCallbacks cb;
  cb.cancel = &g_cancel;
  std::mutex events_mutex;  // events come from the job thread and the memory telemetry thread
  cb.on_event = [&](const Event& e) {
    const std::lock_guard<std::mutex> lock(events_mutex);
    if (events) *events << to_json_line(e) << "\n" << std::flush;
    // Said before sampling starts: a phase with no CPU rung that the plan cannot fit even at its
    // smallest setting. The job still runs (estimates can be high) and saves every section as it
    // is sampled, so nothing is lost if it does run out.
    if (e.type == EventType::kPlan && e.text("fits") == "no" &&
        (e.phase == "sampling" || e.phase == "decode"))
      err << "[memory] warning: the plan puts " << e.phase << " at about "
          << format_size(e.number("estimate")) << " even at its smallest setting, over the "
          << format_size(e.number("budget")) << " budget; each section is saved as soon as it "
             "is sampled, so if this runs out, 'framesmith-cli resume' with a larger "
             "--vram-budget continues the job\n";
    if (e.type == EventType::kOomRecovered)
      err << "[memory] " << e.phase << ": out of memory, " << e.text("action") << " -> "
          << e.text("outcome") << "\n";
  };
  cb.on_progress = [&](const Progress& p) {
    if (quiet) return;
    err << "\r[" << p.phase << "]";
    if (p.sections) err << " section " << p.section << "/" << p.sections;
    if (p.steps) err << " step " << p.step << "/" << p.steps;
    err << "  " << static_cast<int>(p.elapsed_s) << " s     " << std::flush;
  };
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
  g_cancel.store(false);
  g_signal.store(0);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const GenerationResult res = generate(req, cb);
  if (!quiet) err << "\n";
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (res.status != StatusCode::kOk) {
    err << "error: " << res.message << kept_note(output.job_dir(), output.last_partial()) << "\n";
    // Stopped by a signal: 128 + its number, as shells report it (SIGINT 130, SIGTERM 143).
    if (res.status == StatusCode::kCancelled) return g_signal.load() ? 128 + g_signal.load() : 130;
    return 1;
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

int cmd_generate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const Options o =
      parse_options(args, 1, {"--model",      "--image",        "--prompt", "--negative-prompt",
                              "--variant",    "--seconds",      "--seed",   "--steps",
                              "--gs",         "--cfg",          "--rs",     "--window",
                              "--resolution", "--crf",          "--device", "--vram-budget",
                              "--preserve",   "--conditioning", "--out",    "--events",
                              "--params",     "--shift",        "--job-dir"},
                    {"--teacache", "--no-teacache", "--quiet", "--restart"});
  GenerationRequest req;
  if (o.has("--params")) {
    std::ifstream in(o.get("--params"), std::ios::binary);
    if (!in) throw Error(o.get("--params") + ": cannot read parameters file");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    request_from_json(read_params_text(o.get("--params"), text), req);
  }
  apply_runtime_options(o, req);
  apply_generation_options(o, req);
  if (req.model_dir.empty()) throw Error("--model DIR is required");
  if (!o.has("--image")) throw Error("--image FILE is required");
  if (!o.has("--out")) throw Error("--out FILE.mp4 is required");
  if (req.prompt.empty() && req.conditioning_file.empty())
    throw Error("give --prompt TEXT or --conditioning FILE.safetensors");
  validate_request(req);
  const int crf = crf_option(o, 16);
  absolute_paths(req);
  req.job_dir = o.has("--job-dir") ? o.get("--job-dir") : default_job_dir(o.get("--out"));
  // A stopped job is never overwritten by accident: it holds work that resume can continue.
  const JobFolderInfo info = inspect_job_folder(req.job_dir);
  if (info.has_job && !info.finished() && info.sections_done > 0 && !o.flag("--restart"))
    throw Error(req.job_dir + " holds an unfinished job (" + std::to_string(info.sections_done) +
                " of " + std::to_string(info.sections_total) +
                " sections): continue it with \"framesmith-cli resume " + req.job_dir +
                "\", or pass --restart to start it again");
  req.image = load_image_rgb(o.get("--image"));
  JobOutput output(o.get("--out"), crf, req, req.job_dir);
  return run_job(req, output, o, out, err);
}

int cmd_resume(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() < 2 || args[1].rfind("--", 0) == 0)
    throw Error("usage: framesmith-cli resume JOBDIR [--out FILE.mp4] [options]");
  const std::string dir = args[1];
  const Options o = parse_options(
      args, 2, {"--out", "--model", "--device", "--vram-budget", "--preserve", "--crf", "--events"},
      {"--quiet"});
  const JobFolderInfo info = inspect_job_folder(dir);
  if (!info.has_job) throw Error(dir + ": no job here (job.json is missing)");
  GenerationRequest req = load_job_request(dir);  // resume = true
  apply_runtime_options(o, req);
  absolute_paths(req);
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
  if (args.size() < 3 || args[1].rfind("--", 0) == 0 || args[2].rfind("--", 0) == 0)
    throw Error("usage: framesmith-cli export-frames VIDEO.mp4 DIR [--frame N]");
  const std::string video = args[1], dir = args[2];
  const Options o = parse_options(args, 3, {"--frame"}, {});
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
  const double n = to_double(o, "--frame", 0);
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
