#include "generation_worker.h"

#include <QMetaType>
#include <algorithm>
#include <memory>

#include "job_output.h"
#include "video_input.h"

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace framesmith::app {

QImage to_image(const Frames& frames, int index) {
  const QImage view(frames.frame(index), frames.width, frames.height, frames.width * 3,
                    QImage::Format_RGB888);
  return view.copy();  // detach from the engine's buffer before it crosses threads
}

QList<QImage> to_images(const Frames& frames, int max_side) {
  QList<QImage> out;
  out.reserve(frames.count);
  const bool scale = max_side > 0 && std::max(frames.width, frames.height) > max_side;
  for (int i = 0; i < frames.count; ++i) {
    if (!scale) {
      out.push_back(to_image(frames, i));
      continue;
    }
    const QImage view(frames.frame(i), frames.width, frames.height, frames.width * 3,
                      QImage::Format_RGB888);
    out.push_back(view.scaled(max_side, max_side, Qt::KeepAspectRatio, Qt::SmoothTransformation));
  }
  return out;
}

GenerationWorker::GenerationWorker(QObject* parent) : QObject(parent) {
  register_types();
}

void GenerationWorker::register_types() {
  qRegisterMetaType<framesmith::Event>("framesmith::Event");
  qRegisterMetaType<framesmith::Progress>("framesmith::Progress");
  qRegisterMetaType<framesmith::GenerationRequest>("framesmith::GenerationRequest");
  qRegisterMetaType<framesmith::app::JobSpec>("framesmith::app::JobSpec");
  qRegisterMetaType<QList<QImage>>("QList<QImage>");
}

namespace {

// The job thread (and the compute threads it starts, which inherit this) yields to the GUI
// thread when cores are short: a slightly higher nice value for this thread only. Lowering a
// thread's own priority needs no privileges; elsewhere this is a no-op.
void lower_this_thread_priority() {
#ifdef __linux__
  static thread_local bool done = false;
  if (done) return;
  done = true;
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  const int current = ::getpriority(PRIO_PROCESS, tid);
  ::setpriority(PRIO_PROCESS, tid, std::min(current + 5, 19));
#endif
}

}  // namespace

void GenerationWorker::run(const JobSpec& job) {
  lower_this_thread_priority();
  Q_EMIT started(job.id, job.video_path);
  auto finish = [&](StatusCode status, const QString& message) {
    Q_EMIT finished(job.id, int(status), message);
  };
  // Every studio job keeps a job folder beside its video (section latents, parameters), so a
  // stopped, failed or killed job can be resumed from the studio or with framesmith-cli resume.
  GenerationRequest request = job.request;
  if (request.job_dir.empty()) request.job_dir = default_job_dir(job.video_path.toStdString());
  // The studio runs job after job: what one loads stays for the next (Unload frees it).
  request.model_reuse = ModelReuse::kKeepWarm;
  std::unique_ptr<JobOutput> output;
  try {
    // A video job's clip is decoded here, when the job starts, on this thread: a queued job
    // holds the clip's path, not its frames.
    for (const std::string& note : load_input_clip(request)) {
      Event e;
      e.type = EventType::kNotice;
      e.phase = "video";
      e.texts["message"] = note;
      Q_EMIT event(e);
    }
    output = std::make_unique<JobOutput>(job.video_path.toStdString(), job.crf, request);
  } catch (const std::exception& e) {
    finish(StatusCode::kBadInput, QString::fromStdString(e.what()));
    return;
  }
  if (cancel_.load()) {  // stopped before it began: nothing to do, nothing to clean up
    finish(StatusCode::kCancelled, "stopped by the user");
    return;
  }

  GenerationCallbacks cb;
  cb.cancel = &cancel_;
  cb.on_event = [this](const Event& e) { Q_EMIT event(e); };
  cb.on_progress = [this](const Progress& p) { Q_EMIT progress(p); };
  cb.on_preview = [this](const Frames& f, const Progress& p) {
    if (f.count) Q_EMIT preview(to_image(f, 0), p);
  };
  QString write_error;
  // Only the section's new final frames and its tail cross to the GUI and to disk: neither
  // side gets the whole video per section.
  cb.on_chunk = [&](const VideoChunk& c) {
    QString segment;
    try {
      segment = QString::fromStdString(output->write_chunk(c));
    } catch (const std::exception& e) {
      write_error = QString::fromStdString(e.what());
    }
    const int max_side = live_max_side_.load();
    Q_EMIT video_chunk(to_images(c.final_frames, max_side), c.first_final_frame, segment,
                       to_images(c.tail, max_side), c.first_tail_frame, c.section, c.sections);
  };
  const GenerationResult res = generate(request, cb);
  try {
    if (res.input_image.count) output->write_input_image(res.input_image);
    // Whatever was made is kept, also when the job stopped or failed half-way.
    if (output->has_segments()) output->write_final_from_segments();
  } catch (const std::exception& e) {
    if (write_error.isEmpty()) write_error = QString::fromStdString(e.what());
  }
  if (res.status == StatusCode::kOk && !write_error.isEmpty()) {
    finish(StatusCode::kFailed, "the video could not be written: " + write_error);
    return;
  }
  finish(res.status, QString::fromStdString(res.message));
}

}  // namespace framesmith::app
