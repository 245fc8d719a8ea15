// The studio's log: one line per job start, engine event (memory samples excepted) and result,
// in a file that rotates (framesmith.log -> framesmith.log.1 -> ...) so it never grows without
// bound. The GUI offers it one click away from every error message.
#pragma once
#include <QFile>
#include <QMutex>
#include <QString>

namespace framesmith::app {

class RotatingLog {
 public:
  // `path`'s folder is created when missing. Keeps `keep` old files of at most `max_bytes` each.
  explicit RotatingLog(QString path, qint64 max_bytes = 2 * 1024 * 1024, int keep = 3);

  // Appends "<ISO time> <line>\n"; thread-safe; never throws (a log must not break a job).
  void append(const QString& line);
  const QString& path() const { return path_; }

  // The standard place: <XDG data>/framesmith/logs/framesmith.log (app/first_run.h's folders).
  static QString default_path();

 private:
  void rotate();
  QString path_;
  qint64 max_bytes_;
  int keep_;
  QMutex mutex_;
  QFile file_;
};

}  // namespace framesmith::app
