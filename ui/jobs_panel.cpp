#include "jobs_panel.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QListWidget>
#include <QMenu>
#include <QPainter>
#include <QPushButton>
#include <QTabWidget>
#include <QVBoxLayout>

namespace framesmith::ui {
namespace {

constexpr int kIdRole = Qt::UserRole + 1;
constexpr int kVideoRole = Qt::UserRole + 2;
constexpr int kParamsRole = Qt::UserRole + 3;
const QSize kThumb(72, 54);

QIcon thumbnail(const QString& path) {
  QPixmap canvas(kThumb);
  canvas.fill(QColor(40, 40, 40));
  QImage img(path);
  if (!img.isNull()) {
    QPainter p(&canvas);
    const QImage s = img.scaled(kThumb, Qt::KeepAspectRatio, Qt::SmoothTransformation);
    p.drawImage((kThumb.width() - s.width()) / 2, (kThumb.height() - s.height()) / 2, s);
  }
  return QIcon(canvas);
}

}  // namespace

JobsPanel::JobsPanel(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(0, 0, 0, 0);
  tabs_ = new QTabWidget;
  v->addWidget(tabs_);

  auto* queue_page = new QWidget;
  auto* qv = new QVBoxLayout(queue_page);
  qv->setContentsMargins(2, 2, 2, 2);
  queue_list_ = new QListWidget;
  queue_list_->setWordWrap(true);
  qv->addWidget(queue_list_, 1);
  auto* qbuttons = new QHBoxLayout;
  remove_button_ = new QPushButton("Remove");
  clear_button_ = new QPushButton("Clear");
  resume_button_ = new QPushButton("Resume");
  resume_button_->setToolTip("Run the waiting jobs (the queue pauses when a job is stopped)");
  qbuttons->addWidget(remove_button_);
  qbuttons->addWidget(clear_button_);
  qbuttons->addWidget(resume_button_);
  qv->addLayout(qbuttons);
  tabs_->addTab(queue_page, "Queue");

  auto* history_page = new QWidget;
  auto* hv = new QVBoxLayout(history_page);
  hv->setContentsMargins(2, 2, 2, 2);
  history_list_ = new QListWidget;
  history_list_->setIconSize(kThumb);
  history_list_->setWordWrap(true);
  history_list_->setUniformItemSizes(false);
  history_list_->setContextMenuPolicy(Qt::CustomContextMenu);
  hv->addWidget(history_list_, 1);
  auto* hbuttons = new QHBoxLayout;
  auto* play = new QPushButton("Play");
  auto* load = new QPushButton("Load parameters");
  load->setToolTip("Put this job's parameters (and its start image) back into the form");
  auto* folder = new QPushButton("Folder");
  hbuttons->addWidget(play);
  hbuttons->addWidget(load);
  hbuttons->addWidget(folder);
  hv->addLayout(hbuttons);
  tabs_->addTab(history_page, "History");

  connect(remove_button_, &QPushButton::clicked, this, [this] {
    if (auto* item = queue_list_->currentItem(); item && item->data(kIdRole).toInt() > 0)
      Q_EMIT remove_requested(item->data(kIdRole).toInt());
  });
  connect(clear_button_, &QPushButton::clicked, this, &JobsPanel::clear_requested);
  connect(resume_button_, &QPushButton::clicked, this, &JobsPanel::resume_requested);
  auto play_selected = [this] {
    const QString p = selected_history_path(kVideoRole);
    if (!p.isEmpty()) Q_EMIT play_requested(p);
  };
  auto load_selected = [this] {
    const QString p = selected_history_path(kParamsRole);
    if (!p.isEmpty()) Q_EMIT load_params_requested(p);
  };
  auto folder_selected = [this] {
    const QString p = selected_history_path(kVideoRole);
    if (!p.isEmpty()) Q_EMIT open_folder_requested(p);
  };
  connect(play, &QPushButton::clicked, this, play_selected);
  connect(load, &QPushButton::clicked, this, load_selected);
  connect(folder, &QPushButton::clicked, this, folder_selected);
  connect(history_list_, &QListWidget::itemDoubleClicked, this, play_selected);
  connect(history_list_, &QListWidget::customContextMenuRequested, this,
          [this, play_selected, load_selected, folder_selected](const QPoint& pos) {
            if (!history_list_->itemAt(pos)) return;
            QMenu menu;
            menu.addAction("Play", play_selected);
            menu.addAction("Load parameters", load_selected);
            menu.addAction("Open folder", folder_selected);
            menu.exec(history_list_->viewport()->mapToGlobal(pos));
          });
  show_queue(nullptr, {}, false);
}

void JobsPanel::show_queue(const app::JobSpec* running, const QList<app::JobSpec>& waiting,
                           bool paused) {
  queue_list_->clear();
  if (running && running->id > 0) {
    auto* item = new QListWidgetItem("▶ " + app::describe_job(running->request));
    QFont bold = item->font();
    bold.setBold(true);
    item->setFont(bold);
    item->setData(kIdRole, 0);  // the running job is stopped with Stop, not removed
    item->setToolTip("running: " + running->video_path);
    queue_list_->addItem(item);
  }
  for (const app::JobSpec& job : waiting) {
    auto* item =
        new QListWidgetItem(QString("%1. %2").arg(job.id).arg(app::describe_job(job.request)));
    item->setData(kIdRole, job.id);
    queue_list_->addItem(item);
  }
  if (queue_list_->count() == 0) {
    auto* item = new QListWidgetItem(
        "No jobs waiting. Generate adds one; while a job runs, "
        "Generate queues the next.");
    item->setFlags(Qt::NoItemFlags);
    queue_list_->addItem(item);
  }
  remove_button_->setEnabled(!waiting.isEmpty());
  clear_button_->setEnabled(!waiting.isEmpty());
  resume_button_->setVisible(paused && !waiting.isEmpty());
  tabs_->setTabText(0, waiting.isEmpty() ? "Queue" : QString("Queue (%1)").arg(waiting.size()));
}

QListWidgetItem* JobsPanel::make_history_item(const app::HistoryEntry& e) const {
  const GenerationRequest& r = e.request;
  QString prompt = QString::fromStdString(r.prompt).simplified();
  if (prompt.size() > 60) prompt = prompt.left(59) + QChar(0x2026);
  const QString meta = e.params_error.isEmpty()
                           ? QString("%1 s · seed %2 · %3 steps · %4 px · %5")
                                 .arg(r.seconds, 0, 'f', 1)
                                 .arg(qulonglong(r.seed))
                                 .arg(r.steps)
                                 .arg(r.resolution)
                                 .arg(r.variant == TransformerVariant::kF1 ? "F1" : "original")
                           : QString("parameters unreadable");
  auto* item = new QListWidgetItem(thumbnail(e.thumbnail_path),
                                   QString("%1\n%2\n%3")
                                       .arg(prompt.isEmpty() ? "(no prompt)" : prompt, meta,
                                            e.time.toString("yyyy-MM-dd HH:mm")));
  item->setData(kVideoRole, e.video_path);
  item->setData(kParamsRole, QFileInfo::exists(e.params_path) ? e.params_path : e.video_path);
  QString tip = e.video_path;
  if (!e.params_error.isEmpty()) tip += "\n" + e.params_error;
  item->setToolTip(tip);
  return item;
}

void JobsPanel::set_history(const QList<app::HistoryEntry>& entries) {
  history_ = entries;
  history_list_->clear();
  for (const app::HistoryEntry& e : entries) history_list_->addItem(make_history_item(e));
}

void JobsPanel::add_history(const app::HistoryEntry& entry) {
  for (int i = 0; i < history_.size(); ++i) {
    if (history_[i].video_path != entry.video_path) continue;
    history_.removeAt(i);
    delete history_list_->takeItem(i);
    break;
  }
  history_.prepend(entry);
  history_list_->insertItem(0, make_history_item(entry));
}

int JobsPanel::history_count() const {
  return int(history_.size());
}

app::HistoryEntry JobsPanel::history_entry(int row) const {
  return history_.value(row);
}

void JobsPanel::show_history_tab() {
  tabs_->setCurrentIndex(1);
}

void JobsPanel::select_history(int row) {
  history_list_->setCurrentRow(row);
}

QString JobsPanel::selected_history_path(int role) const {
  const QListWidgetItem* item = history_list_->currentItem();
  return item ? item->data(role).toString() : QString();
}

}  // namespace framesmith::ui
