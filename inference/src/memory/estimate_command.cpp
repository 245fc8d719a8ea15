// `estimate`: the memory plan of a job without running it (framesmith-cli / framesmith-engine).
#include "memory/estimate_command.h"

#include <iomanip>
#include <string>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/image_bucket.h"
#include "framesmith/model_set.h"
#include "framesmith/units.h"
#include "memory/device_probe.h"
#include "memory/planner.h"
#include "pipeline/section_schedule.h"

namespace framesmith::memory {

namespace {

const char* kUsage =
    "usage: estimate --model DIR [--resolution N] [--seconds S] [--window W]\n"
    "                [--vram-budget SIZE] [--preserve SIZE] [--device cuda|cpu]\n"
    "                [--image-size WxH] [--variant original|f1]\n";

double to_number(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size()) return d;
  } catch (const std::exception&) {
  }
  throw Error(flag + ": \"" + v + "\" is not a number");
}

}  // namespace

std::string estimate_command_help() {
  return "  estimate --model DIR [--resolution N --seconds S --window W --vram-budget SIZE]\n"
         "                            the memory plan of a job: chunk sizes and peaks per phase\n";
}

int run_estimate_command(const std::vector<std::string>& args, std::ostream& out,
                         std::ostream& err) {
  std::string model, device = "cuda", variant = "original";
  int resolution = 640, window = 9, image_w = 0, image_h = 0;
  double seconds = 5.0;
  std::int64_t budget = 0;
  ResidencyLimits limits;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) {
      err << "estimate: " << a << " needs a value\n" << kUsage;
      return 2;
    }
    const std::string& v = args[++i];
    if (a == "--model") {
      model = v;
    } else if (a == "--resolution") {
      resolution = static_cast<int>(to_number(a, v));
    } else if (a == "--seconds") {
      seconds = to_number(a, v);
    } else if (a == "--window") {
      window = static_cast<int>(to_number(a, v));
    } else if (a == "--vram-budget") {
      budget = parse_size(v);
    } else if (a == "--preserve") {
      limits.preserved_memory = parse_size(v);
    } else if (a == "--device") {
      device = v;
    } else if (a == "--variant") {
      variant = v;
    } else if (a == "--image-size") {
      const std::size_t x = v.find('x');
      if (x == std::string::npos) throw Error("--image-size: expected WxH, got \"" + v + "\"");
      image_w = static_cast<int>(to_number(a, v.substr(0, x)));
      image_h = static_cast<int>(to_number(a, v.substr(x + 1)));
    } else {
      err << "estimate: unknown option " << a << "\n" << kUsage;
      return 2;
    }
  }
  if (model.empty()) {
    err << kUsage;
    return 2;
  }
  if (window < 1) throw Error("--window must be at least 1");
  const bool cuda = device.rfind("cuda", 0) == 0;
  if (!cuda && device != "cpu") throw Error("--device must be cuda or cpu, not \"" + device + "\"");

  const ModelSet set = locate_model_set(
      model, variant == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal);
  const ModelFootprint m = read_model_footprint(set, cuda);
  const BucketSize bucket = start_image_bucket(image_w > 0 ? image_w : resolution,
                                               image_h > 0 ? image_h : resolution, resolution);
  JobShape job;
  job.height = bucket.height;
  job.width = bucket.width;
  job.latent_window = window;
  job.sections = pipeline::total_latent_sections(seconds, window);
  if (budget == 0 && cuda && cuda_probe_available()) budget = make_cuda_probe(0)->snapshot().total;

  const std::string kind = cuda ? "cuda:0" : "simulated";
  const PeakProfile profile = PeakProfile::load(default_profile_path(cuda));
  const MemoryPlan plan =
      make_memory_plan(m, job, budget, limits, profile, kind, cuda && FRAMESMITH_HAS_SDPA);
  out << "model: " << set.description << " (" << m.fingerprint << ")\n"
      << "job: " << job.width << "x" << job.height << ", " << seconds << " s, window " << window
      << ": " << job.sections << " section" << (job.sections == 1 ? "" : "s") << ", largest decode "
      << job.max_decode_latents() << " latent frames\n"
      << "weights: transformer "
      << format_size(double(m.transformer_block_bytes + m.transformer_non_block_bytes)) << ", VAE "
      << format_size(double(m.vae_encoder_bytes + m.vae_decoder_bytes)) << ", text encoders "
      << format_size(double(m.text_encoder_bytes + m.text_encoder_2_bytes)) << ", image encoder "
      << format_size(double(m.image_encoder_bytes)) << " (" << (cuda ? "CUDA dtypes" : "float32")
      << ")\n";
  if (budget == 0) out << "no --vram-budget given: peaks only\n";
  out << plan.text();
  if (!profile.empty()) out << "(estimates corrected by measured peaks in the memory profile)\n";
  return 0;
}

}  // namespace framesmith::memory
