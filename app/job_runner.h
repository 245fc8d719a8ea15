// Runs the job queue: one job at a time on a GenerationWorker in its own QThread. Jobs are named
// <output folder>/<yyyyMMdd-HHmmss>.mp4 when they start. Stop ends the running job after its
// current step and pauses the queue (waiting jobs stay until resume()). Every worker signal is
// passed on for the running job only, on the thread that owns the runner (the GUI thread).
#pragma once
#include <QObject>
#include <QThread>

#include "generation_worker.h"
#include "job_queue.h"

namespace framesmith::app {

// A new, unused <folder>/<yyyyMMdd-HHmmss>[-N].mp4 (no video or sidecar of that name exists).
QString unique_video_path(const QString& folder);

class JobRunner : public QObject {
  Q_OBJECT
 public:
  explicit JobRunner(QObject* parent = nullptr);
  // Stops the running job and waits for it to notice (at its next step).
  ~JobRunner() override;

  void set_output_dir(const QString& dir) { output_dir_ = dir; }
  // Queues a job; it starts at once when nothing runs. Un-pauses the queue. Returns the job id.
  // `video_path` empty: a new name in the output folder (resumed jobs keep their first one).
  int enqueue(GenerationRequest request, int crf, QString video_path = QString());
  void stop();
  void resume();

  bool running() const { return current_.id > 0; }
  bool paused() const { return paused_; }
  const JobSpec& current() const { return current_; }  // id 0: none
  JobQueue& queue() { return queue_; }
  const JobQueue& queue() const { return queue_; }
  // The worker lives on its own thread: only its thread-safe members and signals may be used.
  GenerationWorker* worker() const { return worker_; }

 Q_SIGNALS:
  void job_started(const framesmith::app::JobSpec& job);
  void progress(const framesmith::Progress& p);
  void event(const framesmith::Event& e);
  void preview(const QImage& image, const framesmith::Progress& p);
  void video_chunk(const QList<QImage>& finals, qint64 first_final, const QString& final_segment,
                   const QList<QImage>& tail, qint64 first_tail, int section, int sections);
  // status: framesmith::StatusCode as int.
  void job_finished(const framesmith::app::JobSpec& job, int status, const QString& message);
  void idle();           // the last job finished and nothing waits (or the queue is paused)
  void state_changed();  // running job, waiting jobs or pause changed
  void run_requested(const framesmith::app::JobSpec& job);  // to the worker's thread

 private:
  void dispatch_next();
  void on_finished(int job_id, int status, const QString& message);

  QThread thread_;
  GenerationWorker* worker_ = nullptr;
  JobQueue queue_;
  JobSpec current_;
  bool paused_ = false;
  QString output_dir_;
};

}  // namespace framesmith::app
