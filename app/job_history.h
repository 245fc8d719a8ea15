// Finished jobs as the output folder holds them: <stem>.mp4, <stem>.json (every parameter) and
// <stem>.input.png (the start image as cropped). The history list is rebuilt from these files, so
// it survives restarts and shows jobs made by framesmith-cli too.
#pragma once
#include <QDateTime>
#include <QList>
#include <QString>

#include "framesmith/pipeline.h"

namespace framesmith::app {

struct HistoryEntry {
  QString video_path;
  QString params_path;        // the JSON sidecar
  QString thumbnail_path;     // the cropped input image ("" when there is none)
  QDateTime time;             // when the video was last written
  GenerationRequest request;  // parameters (no pixels); defaults where the sidecar is unreadable
  QString params_error;       // why the sidecar could not be read ("" when it could)
};

// The entry for one video (its sidecar and thumbnail found by name).
HistoryEntry history_entry(const QString& video_path);
// The newest `max_entries` videos of `folder` that have a sidecar, newest first.
QList<HistoryEntry> scan_history(const QString& folder, int max_entries = 200);

// Parameters stored by a previous job: a sidecar .json or an .mp4 with Framesmith metadata.
// Returns FramePack's defaults overridden by what the file holds; throws Error naming the file.
GenerationRequest load_job_params(const QString& path);

}  // namespace framesmith::app
