// A job's progress in words: the status line ("sampling · section 2 of 5 · step 7 of 25 ·
// elapsed 1:02 · ETA 3:10"), the window title ("28% · sampling 2/5 · step 7/25") and the
// fraction done, from the engine's Progress and the job's clock.
#pragma once
#include <QString>

#include "framesmith/pipeline.h"

namespace framesmith::app {

struct ProgressText {
  QString status;
  QString title;
  double fraction = 0;  // of the sampling, 0..1 (the phases before it count as 0)
};

// `elapsed_s`: seconds since the job started; `sampling_start_s`: when the first sampling step
// was reported (< 0: not yet). The ETA extrapolates the sampling's own pace.
ProgressText describe_progress(const Progress& p, double elapsed_s, double sampling_start_s);

// "0:42", "12:05", "1:02:03".
QString clock_text(double seconds);

}  // namespace framesmith::app
