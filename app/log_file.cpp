#include "log_file.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QMutexLocker>
#include <QStandardPaths>
#include <algorithm>

#include "first_run.h"

namespace framesmith::app {

RotatingLog::RotatingLog(QString path, qint64 max_bytes, int keep)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(std::max(keep, 1)) {
  QDir().mkpath(QFileInfo(path_).absolutePath());
  file_.setFileName(path_);
}

QString RotatingLog::default_path() {
  try {
    return QString::fromStdString(user_folders().data) + "/logs/framesmith.log";
  } catch (const std::exception&) {
    return QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation) +
           "/logs/framesmith.log";
  }
}

void RotatingLog::rotate() {
  file_.close();
  QFile::remove(path_ + "." + QString::number(keep_));
  for (int i = keep_ - 1; i >= 1; --i)
    QFile::rename(path_ + "." + QString::number(i), path_ + "." + QString::number(i + 1));
  QFile::rename(path_, path_ + ".1");
}

void RotatingLog::append(const QString& line) {
  QMutexLocker lock(&mutex_);
  if (file_.isOpen() && file_.size() >= max_bytes_) rotate();
  if (!file_.isOpen() && !file_.open(QIODevice::Append | QIODevice::Text)) return;
  const QByteArray text =
      (QDateTime::currentDateTime().toString(Qt::ISODateWithMs) + " " + line + "\n").toUtf8();
  file_.write(text);
  file_.flush();
}

}  // namespace framesmith::app
