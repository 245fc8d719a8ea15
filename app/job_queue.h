// Jobs waiting to run, first in first out. The window runs them one at a time on the worker; the
// queue itself knows nothing of threads or widgets.
#pragma once
#include <QList>
#include <QObject>
#include <QString>

#include "generation_worker.h"

namespace framesmith::app {

// One line for lists and logs: "a cat walks… · 5.0 s · seed 31337 · 25 steps".
QString describe_job(const GenerationRequest& r);

class JobQueue : public QObject {
  Q_OBJECT
 public:
  explicit JobQueue(QObject* parent = nullptr) : QObject(parent) {}

  // Appends a job and returns its id (ids start at 1 and are never reused).
  int enqueue(GenerationRequest request, QString video_path, int crf);
  bool remove(int id);
  void clear();
  // Removes and returns the first job; id 0 when the queue is empty.
  JobSpec take_next();
  bool empty() const { return jobs_.isEmpty(); }
  int size() const { return int(jobs_.size()); }
  const QList<JobSpec>& jobs() const { return jobs_; }

 Q_SIGNALS:
  void changed();

 private:
  QList<JobSpec> jobs_;
  int next_id_ = 1;
};

}  // namespace framesmith::app
