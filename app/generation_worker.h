// Runs generations on a worker thread (a QObject moved to a QThread). Every engine callback
// reaches the GUI as a queued signal carrying copies (QImages detached from the engine's buffers),
// so the GUI thread never waits on the engine and never touches engine memory.
#pragma once
#include <QImage>
#include <QList>
#include <QObject>
#include <QString>
#include <atomic>

#include "engine_metatypes.h"
#include "framesmith/pipeline.h"

namespace framesmith::app {

// A frame as a QImage deep copy (safe to keep on any thread).
QImage to_image(const Frames& frames, int index);
// Every frame, each scaled down (never up) to fit `max_side` pixels (0: full size).
QList<QImage> to_images(const Frames& frames, int max_side = 0);

// One job as the worker receives it.
struct JobSpec {
  int id = 0;
  GenerationRequest request;
  QString video_path;
  int crf = 16;
};

class GenerationWorker : public QObject {
  Q_OBJECT
 public:
  explicit GenerationWorker(QObject* parent = nullptr);
  static void register_types();

  // Thread-safe. request_stop sets the flag the engine checks between steps and decode chunks;
  // the GUI calls reset_stop before it hands over the next job (run() never clears the flag, so
  // a Stop pressed while a job is still on its way is not lost).
  void request_stop() { cancel_.store(true); }
  void reset_stop() { cancel_.store(false); }
  bool stop_requested() const { return cancel_.load(); }

  // Frames sent for live playback are scaled to fit this many pixels (memory, not quality: the
  // MP4 on disk is always full size). 0: no scaling.
  void set_live_max_side(int pixels) { live_max_side_ = pixels; }

 public Q_SLOTS:
  // Runs one job to the end on the worker's thread.
  void run(const framesmith::app::JobSpec& job);

 Q_SIGNALS:
  void started(int job_id, const QString& video_path);
  void progress(const framesmith::Progress& p);
  // The per-step latent preview (small, RGB).
  void preview(const QImage& image, const framesmith::Progress& p);
  // After each section (its segment is already on disk): the frames that just became final,
  // starting at frame `first_final` of the video, the segment file that holds them (empty when
  // it could not be written), and the tail still to be blended, starting at `first_tail` (the
  // original variant's chunks come last part first).
  void video_chunk(const QList<QImage>& finals, qint64 first_final, const QString& final_segment,
                   const QList<QImage>& tail, qint64 first_tail, int section, int sections);
  // Every engine event; called from the job thread and the telemetry thread alike.
  void event(const framesmith::Event& e);
  // status: framesmith::StatusCode as int; message empty on success. Whatever was made is on
  // disk by now (the MP4, its sidecar and the cropped input image).
  void finished(int job_id, int status, const QString& message);

 private:
  std::atomic<bool> cancel_{false};
  std::atomic<int> live_max_side_{640};
};

}  // namespace framesmith::app

Q_DECLARE_METATYPE(framesmith::app::JobSpec)
