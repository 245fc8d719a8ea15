#include "job_queue.h"

namespace framesmith::app {

QString describe_job(const GenerationRequest& r) {
  QString prompt = QString::fromStdString(r.prompt).simplified();
  if (prompt.size() > 48) prompt = prompt.left(47) + QChar(0x2026);
  if (prompt.isEmpty()) prompt = "(no prompt)";
  return QString("%1 · %2 s · seed %3 · %4 steps")
      .arg(prompt)
      .arg(r.seconds, 0, 'f', 1)
      .arg(qulonglong(r.seed))
      .arg(r.steps);
}

int JobQueue::enqueue(GenerationRequest request, QString video_path, int crf) {
  JobSpec job;
  job.id = next_id_++;
  job.request = std::move(request);
  job.video_path = std::move(video_path);
  job.crf = crf;
  jobs_.push_back(std::move(job));
  Q_EMIT changed();
  return jobs_.back().id;
}

bool JobQueue::remove(int id) {
  for (qsizetype i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i].id != id) continue;
    jobs_.removeAt(i);
    Q_EMIT changed();
    return true;
  }
  return false;
}

void JobQueue::clear() {
  if (jobs_.isEmpty()) return;
  jobs_.clear();
  Q_EMIT changed();
}

JobSpec JobQueue::take_next() {
  if (jobs_.isEmpty()) return {};
  JobSpec job = jobs_.takeFirst();
  Q_EMIT changed();
  return job;
}

}  // namespace framesmith::app
