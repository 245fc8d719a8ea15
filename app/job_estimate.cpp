#include "job_estimate.h"

#include <QRegularExpression>
#include <QStringList>
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "framesmith/engine_cli.h"
#include "framesmith/image_bucket.h"
#include "framesmith/units.h"

namespace framesmith::app {

JobEstimate estimate_job(const GenerationRequest& r, int image_width, int image_height) {
  JobEstimate e;
  const int window = std::max(r.latent_window, 1);
  // Python 3's round() as FramePack calls it: halves go to the even neighbour.
  const double x = r.seconds * 30.0 / (window * 4.0);
  double rounded = std::round(x);
  if (std::fabs(x - std::trunc(x)) == 0.5) rounded = 2.0 * std::round(x / 2.0);
  e.sections = std::max(int(rounded), 1);
  // Every section adds `window` latents to the start latent; T latents decode to 4(T-1)+1 frames.
  e.frames = e.sections * window * 4 + 1;
  if (image_width > 0 && image_height > 0) {
    try {
      const BucketSize b = start_image_bucket(image_width, image_height, r.resolution);
      e.width = b.width;
      e.height = b.height;
    } catch (const std::exception&) {
      // The image or resolution is refused; the request's validation says why at Start.
    }
  }
  return e;
}

QString describe_estimate(const JobEstimate& e) {
  QString text = QString("%1 section%2 · %3 frames (%4 s at 30 fps)")
                     .arg(e.sections)
                     .arg(e.sections == 1 ? "" : "s")
                     .arg(e.frames)
                     .arg(e.frames / 30.0, 0, 'f', 1);
  if (e.width > 0) text += QString(" · %1×%2").arg(e.width).arg(e.height);
  return text;
}

namespace {

// The `estimate` command's lines look like
//   "decode: chunk 1 latent frame in 8 row bands, est. 19.0 MiB peak of 24.0 MiB budget"
//   "vae encode: VAE whole; on the CPU instead, est. 41.5 MiB peak of ... (does not fit)".
// The engine has no structured form of its plan in its public headers yet, so its text is read.
struct PhaseLine {
  QString phase;
  std::int64_t peak = -1;
  bool on_cpu = false;
};

PhaseLine parse_phase_line(const QString& line) {
  static const QRegularExpression re(R"(^([a-z ]+):.*est\. ([0-9.]+ ?[KMGT]?i?B) peak)");
  PhaseLine p;
  const QRegularExpressionMatch m = re.match(line);
  if (!m.hasMatch()) return p;
  p.phase = m.captured(1);
  try {
    p.peak = parse_size(m.captured(2).toStdString());
  } catch (const std::exception&) {
    p.peak = -1;
  }
  p.on_cpu = line.contains("on the CPU instead");
  return p;
}

}  // namespace

MemoryPlanText memory_plan(const GenerationRequest& r, int image_width, int image_height) {
  MemoryPlanText out;
  const bool cuda = r.device.rfind("cuda", 0) == 0;
  if (cuda && r.vram_budget_bytes <= 0) {
    out.summary = "memory plan: set a budget to see it before Start (else it comes with the job)";
    return out;
  }
  std::vector<std::string> args = {"estimate",
                                   "--model",
                                   r.model_dir,
                                   "--resolution",
                                   std::to_string(r.resolution),
                                   "--seconds",
                                   std::to_string(r.seconds),
                                   "--window",
                                   std::to_string(r.latent_window),
                                   "--device",
                                   cuda ? "cuda" : "cpu",
                                   "--preserve",
                                   std::to_string(r.preserved_memory_bytes),
                                   "--variant",
                                   r.variant == TransformerVariant::kF1 ? "f1" : "original"};
  if (r.vram_budget_bytes > 0) {
    args.push_back("--vram-budget");
    args.push_back(std::to_string(r.vram_budget_bytes));
  }
  if (image_width > 0 && image_height > 0) {
    args.push_back("--image-size");
    args.push_back(std::to_string(image_width) + "x" + std::to_string(image_height));
  }
  std::ostringstream text, errors;
  int rc = -1;
  try {
    rc = run_engine_command(args, text, errors);
  } catch (const std::exception& e) {
    errors << e.what();
  }
  if (rc != 0) {
    out.summary = "memory plan: " + QString::fromStdString(errors.str()).trimmed();
    return out;
  }
  QString residency;
  PhaseLine largest;
  int on_cpu = 0;
  QStringList plan_lines;
  for (const QString& line : QString::fromStdString(text.str()).split('\n', Qt::SkipEmptyParts)) {
    if (line.startsWith("model:") || line.startsWith("job:")) continue;  // the form shows these
    plan_lines << line;
    if (line.startsWith("residency:"))
      residency = line.section(':', 1).section('(', 0, 0).trimmed();
    const PhaseLine p = parse_phase_line(line);
    if (p.on_cpu)
      ++on_cpu;
    else if (p.peak > largest.peak)
      largest = p;
  }
  out.details = plan_lines.join('\n');
  out.peak_bytes = largest.peak;
  if (largest.peak < 0) {
    out.summary = "memory plan: " + plan_lines.value(0);
    return out;
  }
  out.summary = QString("memory plan%1: peak ≈ %2 (%3)")
                    .arg(residency.isEmpty() ? QString() : " (" + residency + ")")
                    .arg(QString::fromStdString(format_size(double(largest.peak))))
                    .arg(largest.phase);
  if (r.vram_budget_bytes > 0)
    out.summary +=
        QString(" of %1").arg(QString::fromStdString(format_size(double(r.vram_budget_bytes))));
  if (on_cpu > 0)
    out.summary += QString("; %1 phase%2 on the CPU").arg(on_cpu).arg(on_cpu == 1 ? "" : "s");
  return out;
}

}  // namespace framesmith::app
