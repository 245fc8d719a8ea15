#include "job_history.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include "framesmith/error.h"
#include "framesmith/request_json.h"
#include "job_output.h"

namespace framesmith::app {

GenerationRequest load_job_params(const QString& path) {
  std::string text;
  if (QFileInfo(path).suffix().toLower() != "mp4") {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
      throw Error(path.toStdString() + ": cannot read parameters (" +
                  f.errorString().toStdString() + ")");
    text = f.readAll().toStdString();
  }
  GenerationRequest r;
  try {
    request_from_json(read_params_text(path.toStdString(), text), r);
  } catch (const Error& e) {
    const std::string what = e.what();
    // Messages from the video reader already name the file.
    if (what.find(path.toStdString()) != std::string::npos) throw;
    throw Error(path.toStdString() + ": " + what);
  }
  return r;
}

HistoryEntry history_entry(const QString& video_path) {
  const QFileInfo fi(video_path);
  const QString stem = fi.dir().filePath(fi.completeBaseName());
  HistoryEntry e;
  e.video_path = fi.absoluteFilePath();
  e.params_path = stem + ".json";
  if (QFileInfo::exists(stem + ".input.png")) e.thumbnail_path = stem + ".input.png";
  e.time = fi.lastModified();
  try {
    e.request = load_job_params(QFileInfo::exists(e.params_path) ? e.params_path : video_path);
  } catch (const std::exception& ex) {
    e.params_error = QString::fromStdString(ex.what());
  }
  return e;
}

QList<HistoryEntry> scan_history(const QString& folder, int max_entries) {
  QDir dir(folder);
  QFileInfoList videos = dir.entryInfoList({"*.mp4"}, QDir::Files, QDir::Time);  // newest first
  QList<HistoryEntry> out;
  for (const QFileInfo& v : videos) {
    if (out.size() >= max_entries) break;
    if (!QFileInfo::exists(v.dir().filePath(v.completeBaseName() + ".json"))) continue;
    out.push_back(history_entry(v.absoluteFilePath()));
  }
  return out;
}

}  // namespace framesmith::app
