#include "job_runner.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>

namespace framesmith::app {

QString unique_video_path(const QString& folder) {
  const QString stem = folder + "/" + QDateTime::currentDateTime().toString("yyyyMMdd-HHmmss");
  QString path = stem + ".mp4";
  for (int i = 2; QFileInfo::exists(path) || QFileInfo::exists(path.chopped(4) + ".json"); ++i)
    path = QString("%1-%2.mp4").arg(stem).arg(i);
  return path;
}

JobRunner::JobRunner(QObject* parent) : QObject(parent) {
  worker_ = new GenerationWorker();
  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(this, &JobRunner::run_requested, worker_, &GenerationWorker::run, Qt::QueuedConnection);
  // Late signals of a job that already finished are dropped: only the running one is passed on.
  connect(
      worker_, &GenerationWorker::progress, this,
      [this](const Progress& p) {
        if (running()) Q_EMIT progress(p);
      },
      Qt::QueuedConnection);
  connect(
      worker_, &GenerationWorker::event, this,
      [this](const Event& e) {
        if (running()) Q_EMIT event(e);
      },
      Qt::QueuedConnection);
  connect(
      worker_, &GenerationWorker::preview, this,
      [this](const QImage& image, const Progress& p) {
        if (running()) Q_EMIT preview(image, p);
      },
      Qt::QueuedConnection);
  connect(
      worker_, &GenerationWorker::video_chunk, this,
      [this](const QList<QImage>& finals, qint64 first_final, const QString& final_segment,
             const QList<QImage>& tail, qint64 first_tail, int section, int sections) {
        if (running())
          Q_EMIT video_chunk(finals, first_final, final_segment, tail, first_tail, section,
                             sections);
      },
      Qt::QueuedConnection);
  connect(worker_, &GenerationWorker::finished, this, &JobRunner::on_finished,
          Qt::QueuedConnection);
  connect(&queue_, &JobQueue::changed, this, &JobRunner::state_changed);
  thread_.start();
}

JobRunner::~JobRunner() {
  worker_->request_stop();
  thread_.quit();
  thread_.wait();
}

int JobRunner::enqueue(GenerationRequest request, int crf, QString video_path) {
  const int id = queue_.enqueue(std::move(request), std::move(video_path), crf);
  paused_ = false;
  dispatch_next();
  return id;
}

void JobRunner::stop() {
  if (!running()) return;
  worker_->request_stop();
  if (!queue_.empty()) paused_ = true;
  Q_EMIT state_changed();
}

void JobRunner::resume() {
  paused_ = false;
  dispatch_next();
  Q_EMIT state_changed();
}

void JobRunner::dispatch_next() {
  if (running() || paused_ || queue_.empty()) return;
  current_ = queue_.take_next();
  QDir().mkpath(output_dir_);  // a failure shows as the job's own error, with the path
  if (current_.video_path.isEmpty()) current_.video_path = unique_video_path(output_dir_);
  worker_->reset_stop();
  Q_EMIT job_started(current_);
  Q_EMIT state_changed();
  Q_EMIT run_requested(current_);
}

void JobRunner::on_finished(int job_id, int status, const QString& message) {
  if (job_id != current_.id) return;
  const JobSpec done = current_;
  current_ = JobSpec{};
  Q_EMIT job_finished(done, status, message);
  dispatch_next();
  Q_EMIT state_changed();
  if (!running()) Q_EMIT idle();
}

}  // namespace framesmith::app
