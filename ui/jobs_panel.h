// Queue and history, as two tabs. The queue lists the running job and those waiting (remove,
// clear, resume after a Stop); the history lists finished videos with a thumbnail and their
// parameters (play, load the parameters back into the form, open the folder).
#pragma once
#include <QWidget>

#include "job_history.h"
#include "job_queue.h"

class QListWidget;
class QListWidgetItem;
class QPushButton;
class QTabWidget;

namespace framesmith::ui {

class JobsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit JobsPanel(QWidget* parent = nullptr);

  // The running job (id 0: none) and the waiting ones; `paused`: the queue waits for Resume.
  void show_queue(const app::JobSpec* running, const QList<app::JobSpec>& waiting, bool paused);
  void set_history(const QList<app::HistoryEntry>& entries);
  void add_history(const app::HistoryEntry& entry);  // newest first
  int history_count() const;
  app::HistoryEntry history_entry(int row) const;
  void show_history_tab();
  void select_history(int row);

 Q_SIGNALS:
  void remove_requested(int job_id);
  void clear_requested();
  void resume_requested();
  void play_requested(const QString& video_path);
  void load_params_requested(const QString& params_path);
  void open_folder_requested(const QString& video_path);

 private:
  QListWidgetItem* make_history_item(const app::HistoryEntry& e) const;
  QString selected_history_path(int role) const;

  QTabWidget* tabs_ = nullptr;
  QListWidget* queue_list_ = nullptr;
  QPushButton* remove_button_ = nullptr;
  QPushButton* clear_button_ = nullptr;
  QPushButton* resume_button_ = nullptr;
  QListWidget* history_list_ = nullptr;
  QList<app::HistoryEntry> history_;
};

}  // namespace framesmith::ui
