// generate() as a command-line program runs it (framesmith-cli and framesmith-engine alike): every
// event as a JSON line in an events file, the progress on one rewritten line of stderr, memory
// warnings and recoveries as lines of their own, and SIGINT / SIGTERM stopping the job between
// steps (what is saved stays saved). Plain C++.
#pragma once
#include <ostream>
#include <string>

#include "framesmith/pipeline.h"

namespace framesmith {

struct ConsoleJob {
  std::string program;      // "framesmith-cli": its resume command is named in the warnings
  std::string events_path;  // empty: no events file
  bool quiet = false;       // no progress line
};

struct ConsoleResult {
  GenerationResult result;
  int signal = 0;  // the signal that stopped the job (0: none)
  // The process exit status: 0, 128 + the signal (SIGINT 130, SIGTERM 143) when one stopped it,
  // 130 for another cancel, 1 for any other failure.
  int exit_status() const;
};

// Runs generate(request, callbacks) with on_event, on_progress and cancel taken over (the
// callbacks' own on_event is still called, under the same lock). Throws Error when the events
// file cannot be written, before the job starts.
ConsoleResult run_console_job(const GenerationRequest& request, GenerationCallbacks callbacks,
                              const ConsoleJob& how, std::ostream& err);

}  // namespace framesmith
