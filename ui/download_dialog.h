// Model > Download…: fetches FramePack's files from the Hugging Face hub on a thread of its own
// (framesmith/hub.h), with the plan (files, sizes, free disk) shown before it starts, per-file and
// total progress, speed and ETA, and Pause / Resume / Cancel; the window stays responsive.
// Closing the dialog pauses the download (the partial file is kept for the next time).
#pragma once
#include <QDialog>
#include <memory>
#include <thread>

#include "framesmith/hub.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QRadioButton;

namespace framesmith::ui {

class DownloadDialog : public QDialog {
  Q_OBJECT
 public:
  explicit DownloadDialog(QWidget* parent = nullptr);
  ~DownloadDialog() override;

  // For tests and for the caller: which hub and which target (defaults from the environment).
  void set_config(const hub::HubConfig& config) { config_ = config; }
  void set_model_set(const QString& name);
  void set_target_folder(const QString& dir);  // a plain folder; "" for the hub cache
  QString log_text() const;
  bool running() const { return worker_.joinable() && busy_; }

 public Q_SLOTS:
  void check();  // lists the files (on the worker thread) and shows the plan
  void start();  // plans again and downloads what is missing
  void pause();
  void cancel();

 Q_SIGNALS:
  // The model set is complete at `where` ("hf", "hf:DIR" or a folder) for `variant_f1`.
  void downloaded(const QString& where, bool variant_f1);
  void state_changed();
  // Every line of the dialog's log (what was fetched from where, retries, errors), for the
  // studio's log file.
  void log_line(const QString& line);

 protected:
  void closeEvent(QCloseEvent* e) override;

 private:
  void run_on_worker(bool download);
  void on_plan(const hub::DownloadPlan& plan);
  void on_progress(const hub::Progress& p);
  void on_finished(int outcome, const QString& error);
  void append_log(const QString& line);
  void update_buttons();
  void join_worker();
  hub::Target target() const;
  QString model_argument() const;

  hub::HubConfig config_;
  std::unique_ptr<hub::Control> control_;
  std::thread worker_;
  bool busy_ = false;
  bool downloading_ = false;
  bool planned_ok_ = false;

  QComboBox* set_box_ = nullptr;
  QRadioButton* to_cache_ = nullptr;
  QRadioButton* to_folder_ = nullptr;
  QLineEdit* folder_edit_ = nullptr;
  QLabel* plan_label_ = nullptr;
  QProgressBar* total_bar_ = nullptr;
  QProgressBar* file_bar_ = nullptr;
  QLabel* status_label_ = nullptr;
  QPlainTextEdit* log_ = nullptr;
  QPushButton* start_button_ = nullptr;
  QPushButton* pause_button_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
};

}  // namespace framesmith::ui
