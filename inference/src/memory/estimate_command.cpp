// `estimate`: the memory plan of a job without running it (framesmith-cli / framesmith-engine).
#include "memory/estimate_command.h"

#include <iomanip>
#include <sstream>
#include <string>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/generation_options.h"
#include "framesmith/image_bucket.h"
#include "framesmith/memory_plan.h"
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
  GenerationRequest r;
  r.model_dir.clear();
  r.device = "cuda";
  r.resolution = 640;
  r.latent_window = 9;
  r.seconds = 5.0;
  r.vram_budget_bytes = 0;
  int image_w = 0, image_h = 0;
  const CommandOptions o = parse_command(
      {"estimate",
       "The memory plan of a job without running it: chunk sizes and peaks per phase.",
       {},
       "",
       {{"--model", "", false},
        {"--resolution", "", false},
        {"--seconds", "", false},
        {"--window", "", false},
        {"--vram-budget", "", false},
        {"--preserve", "", false},
        {"--device", "cpu, cuda or cuda:N (default cuda: the plan for a card)", false},
        {"--variant", "", false},
        {"--image-size", "the start picture's size, WxH (default: square at the resolution)",
         false}}},
      args, 1);
  if (answered_help(o, out)) return 0;
  if (o.has("--model")) r.model_dir = o.get("--model");
  if (o.has("--resolution"))
    r.resolution = static_cast<int>(to_number("--resolution", o.get("--resolution")));
  if (o.has("--seconds")) r.seconds = to_number("--seconds", o.get("--seconds"));
  if (o.has("--window"))
    r.latent_window = static_cast<int>(to_number("--window", o.get("--window")));
  if (o.has("--vram-budget")) r.vram_budget_bytes = parse_size(o.get("--vram-budget"));
  if (o.has("--preserve")) r.preserved_memory_bytes = parse_size(o.get("--preserve"));
  if (o.has("--device")) r.device = o.get("--device");
  if (o.has("--variant")) {
    const std::string v = o.get("--variant");
    if (v != "original" && v != "f1")
      throw Error("--variant must be original or f1, not \"" + v + "\"");
    r.variant = v == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  }
  if (o.has("--image-size")) {
    const std::string v = o.get("--image-size");
    const std::size_t x = v.find('x');
    if (x == std::string::npos) throw Error("--image-size: expected WxH, got \"" + v + "\"");
    image_w = static_cast<int>(to_number("--image-size", v.substr(0, x)));
    image_h = static_cast<int>(to_number("--image-size", v.substr(x + 1)));
  }
  if (r.model_dir.empty()) {
    err << kUsage;
    return 2;
  }
  out << plan_job_memory(r, image_w, image_h).text;
  return 0;
}

}  // namespace framesmith::memory

namespace framesmith {

const PhaseEstimate* MemoryPlanReport::largest() const {
  const PhaseEstimate* best = nullptr;
  for (const PhaseEstimate& p : phases)
    if (!p.on_cpu && (!best || p.peak_bytes > best->peak_bytes)) best = &p;
  return best;
}

MemoryPlanReport plan_job_memory(const GenerationRequest& r, int image_w, int image_h) {
  using namespace memory;
  if (r.latent_window < 1) throw Error("--window must be at least 1");
  const bool cuda = r.device.rfind("cuda", 0) == 0;
  if (!cuda && r.device != "cpu")
    throw Error("--device must be cuda or cpu, not \"" + r.device + "\"");
  if (r.vram_budget_bytes < 0) throw Error("the VRAM budget cannot be negative");
  ResidencyLimits limits;
  limits.preserved_memory = r.preserved_memory_bytes;

  const ModelSet set = locate_model_set(r.model_dir, r.variant);
  const ModelFootprint m = read_model_footprint(set, cuda);
  const BucketSize bucket = start_image_bucket(image_w > 0 ? image_w : r.resolution,
                                               image_h > 0 ? image_h : r.resolution, r.resolution);
  JobShape job = job_shape_for(m);
  job.height = bucket.height;
  job.width = bucket.width;
  job.latent_window = r.latent_window;
  job.sections = pipeline::total_latent_sections(r.seconds, r.latent_window);
  std::int64_t budget = r.vram_budget_bytes;
  if (budget == 0 && cuda && cuda_probe_available() && at::hasCUDA())
    budget = make_cuda_probe(0)->snapshot().total;

  const std::string kind = cuda ? "cuda:0" : "simulated";
  const PeakProfile profile = PeakProfile::load(default_profile_path(cuda));
  const MemoryPlan plan =
      make_memory_plan(m, job, budget, limits, profile, kind, attention_kernel_for(cuda));

  MemoryPlanReport report;
  report.model = set.description + " (" + m.fingerprint + ")";
  report.width = static_cast<int>(job.width);
  report.height = static_cast<int>(job.height);
  report.sections = job.sections;
  report.largest_decode_latents = job.max_decode_latents();
  const std::int64_t transformer = m.transformer_block_bytes + m.transformer_non_block_bytes,
                     vae = m.vae_encoder_bytes + m.vae_decoder_bytes,
                     text = m.text_encoder_bytes + m.text_encoder_2_bytes;
  report.weight_bytes = transformer + vae + text + m.image_encoder_bytes;
  report.residency = plan.residency;
  report.budget_bytes = plan.budget;
  for (const PhasePlan& p : plan.phases) {
    PhaseEstimate e;
    e.phase = p.phase;
    e.setting = p.setting;
    e.peak_bytes = p.estimate;
    e.fits = p.fits;
    // Encoders that do not fit run on the CPU (their ladders' last rung); sampling and decoding
    // always run on the device, their ladders going further down when needed.
    e.on_cpu = p.setting.find("on the CPU instead") != std::string::npos;
    e.line = p.line();
    report.phases.push_back(e);
  }
  report.host_decode_bytes = plan.host_bytes;
  report.corrected_by_profile = !profile.empty();

  std::ostringstream out;
  out << "model: " << report.model << "\n"
      << "job: " << job.width << "x" << job.height << ", " << r.seconds << " s, window "
      << r.latent_window << ": " << job.sections << " section" << (job.sections == 1 ? "" : "s")
      << ", largest decode " << job.max_decode_latents() << " latent frames\n"
      << "weights: transformer " << format_size(double(transformer)) << ", VAE "
      << format_size(double(vae)) << ", text encoders " << format_size(double(text))
      << ", image encoder " << format_size(double(m.image_encoder_bytes)) << " ("
      << (cuda ? "CUDA dtypes" : "float32") << ")\n"
      << "host: transformer " << format_size(double(m.transformer_host_bytes))
      << ", LLaMA text encoder " << format_size(double(m.text_encoder_host_bytes))
      << " memory-mapped as stored, converted per module at use\n";
  if (budget == 0) out << "no --vram-budget given: peaks only\n";
  out << plan.text();
  if (report.corrected_by_profile)
    out << "(estimates corrected by measured peaks in the memory profile)\n";
  report.text = out.str();
  return report;
}

}  // namespace framesmith
