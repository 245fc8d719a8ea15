#include "job_estimate.h"

#include <QStringList>
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "framesmith/image_bucket.h"
#include "framesmith/memory_plan.h"
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

MemoryPlanText memory_plan(const GenerationRequest& r, int image_width, int image_height) {
  MemoryPlanText out;
  const bool cuda = r.device.rfind("cuda", 0) == 0;
  if (cuda && r.vram_budget_bytes <= 0) {
    out.summary = "memory plan: set a budget to see it before Start (else it comes with the job)";
    return out;
  }
  MemoryPlanReport plan;
  try {
    plan = plan_job_memory(r, image_width, image_height);
  } catch (const std::exception& e) {
    out.summary = "memory plan: " + QString::fromStdString(e.what()).trimmed();
    return out;
  }
  QStringList lines;
  for (const PhaseEstimate& p : plan.phases) lines << QString::fromStdString(p.line);
  if (plan.host_decode_bytes > 0)
    lines << QString::fromStdString("host memory for decoding: about " +
                                    format_size(double(plan.host_decode_bytes)));
  out.details = QString::fromStdString("residency: " + plan.residency) + "\n" + lines.join('\n');
  const PhaseEstimate* largest = plan.largest();
  const auto on_cpu = std::count_if(plan.phases.begin(), plan.phases.end(),
                                    [](const PhaseEstimate& p) { return p.on_cpu; });
  if (!largest) {
    out.summary = "memory plan: " + QString::fromStdString(plan.residency) + ", nothing planned";
    return out;
  }
  out.peak_bytes = largest->peak_bytes;
  out.summary = QString("memory plan (%1): peak ≈ %2 (%3)")
                    .arg(QString::fromStdString(plan.residency))
                    .arg(QString::fromStdString(format_size(double(largest->peak_bytes))))
                    .arg(QString::fromStdString(largest->phase));
  if (r.vram_budget_bytes > 0)
    out.summary +=
        QString(" of %1").arg(QString::fromStdString(format_size(double(r.vram_budget_bytes))));
  if (on_cpu > 0)
    out.summary += QString("; %1 phase%2 on the CPU").arg(on_cpu).arg(on_cpu == 1 ? "" : "s");
  return out;
}

}  // namespace framesmith::app
