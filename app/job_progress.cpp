#include "job_progress.h"

#include <algorithm>

namespace framesmith::app {

QString clock_text(double seconds) {
  const int s = std::max(0, int(seconds + 0.5));
  if (s >= 3600)
    return QString("%1:%2:%3")
        .arg(s / 3600)
        .arg(s / 60 % 60, 2, 10, QChar('0'))
        .arg(s % 60, 2, 10, QChar('0'));
  return QString("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QChar('0'));
}

ProgressText describe_progress(const Progress& p, double elapsed_s, double sampling_start_s) {
  ProgressText out;
  const QString phase = QString::fromStdString(p.phase);
  out.status = phase;
  out.title = phase;
  if (p.sections > 0) {
    const double step_fraction = p.steps > 0 ? double(p.step) / p.steps : 1.0;
    out.fraction = std::clamp((p.section - 1 + step_fraction) / p.sections, 0.0, 1.0);
    out.status += QString(" · section %1 of %2").arg(p.section).arg(p.sections);
    out.title += QString(" %1/%2").arg(p.section).arg(p.sections);
  }
  if (p.steps > 0) {
    out.status += QString(" · step %1 of %2").arg(p.step).arg(p.steps);
    out.title += QString(" · step %1/%2").arg(p.step).arg(p.steps);
  }
  out.status += " · elapsed " + clock_text(elapsed_s);
  if (out.fraction > 0.01 && sampling_start_s >= 0) {
    const double spent = elapsed_s - sampling_start_s;
    out.status += " · ETA " + clock_text(spent * (1 - out.fraction) / out.fraction);
  }
  out.title = QString("%1% · %2").arg(int(out.fraction * 100)).arg(out.title);
  return out;
}

}  // namespace framesmith::app
