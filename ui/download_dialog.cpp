#include "download_dialog.h"

#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRadioButton>
#include <QVBoxLayout>

#include "download_command.h"

namespace framesmith::ui {
namespace {

QString bytes(std::uint64_t b) {
  return QString::fromStdString(hub::format_bytes(b));
}

QString clock(double s) {
  if (s < 0) return "--:--";
  const long t = static_cast<long>(s + 0.5);
  return t >= 3600 ? QString("%1:%2:%3")
                         .arg(t / 3600)
                         .arg((t / 60) % 60, 2, 10, QChar('0'))
                         .arg(t % 60, 2, 10, QChar('0'))
                   : QString("%1:%2").arg(t / 60).arg(t % 60, 2, 10, QChar('0'));
}

// Bars count in tenths of a percent, so that 40 GB and 2-byte files both show right.
int permille(std::uint64_t done, std::uint64_t total) {
  return total == 0 ? 1000 : static_cast<int>(1000.0 * double(done) / double(total));
}

}  // namespace

DownloadDialog::DownloadDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle("Download models");
  setObjectName("download_dialog");
  config_ = hub::hub_config_from_environment();
  auto* v = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  set_box_ = new QComboBox;
  set_box_->setObjectName("download_set");
  set_box_->addItem("FramePack (original)", "framepack");
  set_box_->addItem("FramePack F1", "framepack-f1");
  form->addRow("Model set", set_box_);
  to_cache_ = new QRadioButton(QString("Hugging Face cache, shared with Python tools (%1)")
                                   .arg(QString::fromStdString(hub::default_hub_cache())));
  to_cache_->setObjectName("download_to_cache");
  to_folder_ = new QRadioButton("Folder");
  auto* folder_row = new QHBoxLayout;
  folder_edit_ = new QLineEdit;
  folder_edit_->setObjectName("download_folder");
  auto* browse = new QPushButton("Browse…");
  folder_row->addWidget(to_folder_);
  folder_row->addWidget(folder_edit_, 1);
  folder_row->addWidget(browse);
  form->addRow("Save to", to_cache_);
  form->addRow("", folder_row);
  v->addLayout(form);
  const hub::Target def = app::default_download_target("framepack");
  (def.layout == hub::Layout::kHubCache ? to_cache_ : to_folder_)->setChecked(true);
  folder_edit_->setText(QString::fromStdString(
      def.layout == hub::Layout::kPlainFolder ? def.dir : app::default_download_target("x").dir));
  plan_label_ = new QLabel("Press Check to list the files and their sizes.");
  plan_label_->setObjectName("download_plan");
  plan_label_->setWordWrap(true);
  plan_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  v->addWidget(plan_label_);
  total_bar_ = new QProgressBar;
  total_bar_->setObjectName("download_total");
  file_bar_ = new QProgressBar;
  file_bar_->setObjectName("download_file");
  status_label_ = new QLabel;
  status_label_->setObjectName("download_status");
  v->addWidget(new QLabel("All files"));
  v->addWidget(total_bar_);
  v->addWidget(status_label_);
  v->addWidget(new QLabel("Current file"));
  v->addWidget(file_bar_);
  for (QProgressBar* b : {total_bar_, file_bar_}) {
    b->setRange(0, 1000);
    b->setValue(0);
    b->setFormat("%p%");
  }
  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setObjectName("download_log");
  log_->setMaximumBlockCount(2000);
  v->addWidget(log_, 1);
  auto* buttons = new QHBoxLayout;
  auto* check_button = new QPushButton("Check");
  start_button_ = new QPushButton("Download");
  start_button_->setObjectName("download_start");
  pause_button_ = new QPushButton("Pause");
  pause_button_->setObjectName("download_pause");
  cancel_button_ = new QPushButton("Cancel");
  cancel_button_->setObjectName("download_cancel");
  auto* close_button = new QPushButton("Close");
  buttons->addWidget(check_button);
  buttons->addStretch(1);
  buttons->addWidget(start_button_);
  buttons->addWidget(pause_button_);
  buttons->addWidget(cancel_button_);
  buttons->addWidget(close_button);
  v->addLayout(buttons);
  connect(check_button, &QPushButton::clicked, this, &DownloadDialog::check);
  connect(start_button_, &QPushButton::clicked, this, &DownloadDialog::start);
  connect(pause_button_, &QPushButton::clicked, this, &DownloadDialog::pause);
  connect(cancel_button_, &QPushButton::clicked, this, &DownloadDialog::cancel);
  connect(close_button, &QPushButton::clicked, this, &QDialog::close);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d =
        QFileDialog::getExistingDirectory(this, "Folder for the model", folder_edit_->text());
    if (!d.isEmpty()) {
      folder_edit_->setText(d);
      to_folder_->setChecked(true);
    }
  });
  resize(720, 520);
  update_buttons();
}

DownloadDialog::~DownloadDialog() {
  if (control_) control_->pause = true;
  join_worker();
}

void DownloadDialog::set_model_set(const QString& name) {
  const int i = set_box_->findData(name);
  if (i >= 0) set_box_->setCurrentIndex(i);
}

void DownloadDialog::set_target_folder(const QString& dir) {
  if (dir.isEmpty()) {
    to_cache_->setChecked(true);
  } else {
    folder_edit_->setText(dir);
    to_folder_->setChecked(true);
  }
}

QString DownloadDialog::log_text() const {
  return log_->toPlainText();
}

hub::Target DownloadDialog::target() const {
  if (to_cache_->isChecked()) return {hub::Layout::kHubCache, hub::default_hub_cache()};
  return {hub::Layout::kPlainFolder, QDir::cleanPath(folder_edit_->text()).toStdString()};
}

QString DownloadDialog::model_argument() const {
  return to_cache_->isChecked() ? QString("hf") : QDir::cleanPath(folder_edit_->text());
}

void DownloadDialog::check() {
  run_on_worker(false);
}
void DownloadDialog::start() {
  run_on_worker(true);
}

void DownloadDialog::pause() {
  if (control_) control_->pause = true;
}

void DownloadDialog::cancel() {
  if (control_) control_->cancel = true;
}

void DownloadDialog::join_worker() {
  if (worker_.joinable()) worker_.join();
}

// The hub calls (listing, downloading, hashing) never run on the GUI thread; results come back
// as queued calls.
void DownloadDialog::run_on_worker(bool download) {
  if (busy_) return;
  join_worker();
  if (download && !to_cache_->isChecked() && folder_edit_->text().trimmed().isEmpty()) {
    append_log("Choose a folder first.");
    return;
  }
  busy_ = true;
  downloading_ = download;
  control_ = std::make_unique<hub::Control>();
  hub::Control* control = control_.get();
  const hub::HubConfig config = config_;
  const std::string set = set_box_->currentData().toString().toStdString();
  const hub::Target t = target();
  append_log(QString("%1 %2 from %3…")
                 .arg(download ? "Downloading" : "Listing", QString::fromStdString(set),
                      QString::fromStdString(config.endpoint)));
  update_buttons();
  worker_ = std::thread([this, download, control, config, set, t] {
    int outcome = -1;
    QString error;
    try {
      hub::DownloadPlan plan = hub::plan_download(config, hub::model_set_selection(set), t);
      QMetaObject::invokeMethod(
          this, [this, plan] { on_plan(plan); }, Qt::QueuedConnection);
      if (download) {
        const hub::DownloadResult r = hub::run_download(
            config, plan,
            [this](const hub::Progress& p) {
              QMetaObject::invokeMethod(
                  this, [this, p] { on_progress(p); }, Qt::QueuedConnection);
            },
            control);
        outcome = static_cast<int>(r.outcome);
      }
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        this, [this, outcome, error] { on_finished(outcome, error); }, Qt::QueuedConnection);
  });
}

void DownloadDialog::on_plan(const hub::DownloadPlan& plan) {
  QString text = QString::fromStdString(app::describe_plan(plan));
  while (text.endsWith('\n')) text.chop(1);
  const std::string problem = hub::disk_space_problem(plan);
  planned_ok_ = problem.empty();
  if (!problem.empty()) text += "\n" + QString::fromStdString(problem);
  plan_label_->setText(text);
  plan_label_->setStyleSheet(problem.empty() ? QString() : QString("color: #c0392b;"));
  total_bar_->setValue(permille(plan.total_bytes - plan.missing_bytes, plan.total_bytes));
}

void DownloadDialog::on_progress(const hub::Progress& p) {
  total_bar_->setValue(permille(p.done_bytes, p.total_bytes));
  file_bar_->setValue(permille(p.file_done_bytes, p.file_total_bytes));
  const QString file = QString::fromStdString(p.file);
  switch (p.phase) {
    case hub::Phase::kRetrying:
      append_log(QString("%1: %2; trying again in %3")
                     .arg(file, QString::fromStdString(p.message), clock(p.retry_in_s)));
      break;
    case hub::Phase::kInstalled:
    case hub::Phase::kSkipped:
      append_log(QString("%1: %2").arg(file, QString::fromStdString(p.message)));
      break;
    case hub::Phase::kVerifying:
      status_label_->setText(QString("verifying %1").arg(file));
      break;
    case hub::Phase::kDownloading:
      status_label_->setText(QString("%1 of %2, %3/s, %4 left — %5")
                                 .arg(bytes(p.done_bytes), bytes(p.total_bytes),
                                      bytes(static_cast<std::uint64_t>(p.bytes_per_s)),
                                      clock(p.eta_s), file));
      break;
  }
}

void DownloadDialog::on_finished(int outcome, const QString& error) {
  join_worker();
  busy_ = false;
  const bool was_download = downloading_;
  downloading_ = false;
  if (!error.isEmpty()) {
    append_log("Error: " + error);
    status_label_->setText("Stopped by an error (see below); what was fetched is kept.");
  } else if (was_download && outcome == static_cast<int>(hub::Outcome::kDone)) {
    status_label_->setText("Done: the model set is complete.");
    append_log("Done. Using " + model_argument());
    Q_EMIT downloaded(model_argument(), set_box_->currentData().toString() == "framepack-f1");
  } else if (outcome == static_cast<int>(hub::Outcome::kPaused)) {
    status_label_->setText("Paused: press Download to resume (the partial file is kept).");
    append_log("Paused.");
  } else if (outcome == static_cast<int>(hub::Outcome::kCancelled)) {
    status_label_->setText("Cancelled: the partial file was removed; finished files are kept.");
    append_log("Cancelled.");
  }
  update_buttons();
  Q_EMIT state_changed();
}

void DownloadDialog::append_log(const QString& line) {
  log_->appendPlainText(line);
  Q_EMIT log_line(line);
}

void DownloadDialog::update_buttons() {
  start_button_->setEnabled(!busy_);
  pause_button_->setEnabled(busy_ && downloading_);
  cancel_button_->setEnabled(busy_ && downloading_);
  set_box_->setEnabled(!busy_);
  to_cache_->setEnabled(!busy_);
  to_folder_->setEnabled(!busy_);
  folder_edit_->setEnabled(!busy_);
}

void DownloadDialog::closeEvent(QCloseEvent* e) {
  if (busy_ && control_) {
    control_->pause = true;  // kept as a partial; the next Download resumes it
    join_worker();
    busy_ = false;
  }
  QDialog::closeEvent(e);
}

}  // namespace framesmith::ui
