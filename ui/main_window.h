// The studio window: the inputs on the left; preview, queue and history, memory graph and event
// log on the right. It composes the panels and reacts to the job runner (app/job_runner.h), which
// runs one job at a time on a worker thread and reports back through queued signals.
#pragma once
#include <QElapsedTimer>
#include <QMainWindow>
#include <memory>
#include <optional>

#include "framesmith/pipeline.h"
#include "job_runner.h"

class QLabel;
class QProgressBar;
class QPushButton;
class QSettings;
class QSplitter;
class QToolButton;

namespace framesmith::app {
class RotatingLog;
}

namespace framesmith::ui {

class EventLog;
class ImageInput;
class InputsPanel;
class JobsPanel;
class MemoryGraph;
class DownloadDialog;
class ModelPicker;
class ParametersForm;
class PreviewPlayer;

// What the command line (or a test) asks for; unset values come from the saved settings.
struct StartOptions {
  QString model_dir;
  QString image_path;
  QString prompt;
  QString negative_prompt;
  QString output_dir;
  QString settings_file;   // "": ~/.config/framesmith/studio.ini
  QString log_file;        // "": ~/.local/share/framesmith/logs/framesmith.log
  QString tiny_model_dir;  // "": ~/.local/share/framesmith/models/tiny
  std::optional<double> seconds;
  std::optional<int> steps;
  std::optional<int> resolution;
  std::optional<int> window;
  std::optional<std::uint64_t> seed;
  std::optional<StepCache> cache;
  QString variant;      // "original" or "f1"
  QString device;       // "cpu", "cuda", "cuda:N"
  QString vram_budget;  // a SIZE ("64MiB")
  QStringList loras;    // FILE or FILE:STRENGTH, as framesmith-cli's --lora
  QString end_image_path;
  QString video_path;  // a video to extend
};

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(const StartOptions& options, QWidget* parent = nullptr);
  ~MainWindow() override;

  // The request the inputs describe (image included); throws Error naming what is missing.
  GenerationRequest current_request() const;
  bool load_image(const QString& path);  // false (and a message) when refused
  // Parameters of a previous job (sidecar .json or .mp4) into the form; false with a message.
  bool load_params_file(const QString& path);
  void set_prompt(const QString& prompt);
  void set_output_dir(const QString& dir);
  void save_settings();

  bool is_running() const { return runner_.running(); }
  int queued_count() const { return runner_.queue().size(); }
  bool queue_paused() const { return runner_.paused(); }
  QString last_video_path() const { return last_video_; }
  QString last_message() const { return last_message_; }
  int last_status() const { return last_status_; }
  QString status_text() const;
  QString output_dir() const;
  QString log_path() const;

  InputsPanel* inputs() const { return inputs_; }
  ImageInput* image_input() const;
  ParametersForm* parameters() const;
  ModelPicker* model_picker() const;
  MemoryGraph* memory_graph() const { return graph_; }
  EventLog* event_log() const { return log_view_; }
  PreviewPlayer* player() const { return player_; }
  JobsPanel* jobs_panel() const { return jobs_; }
  // Tests feed events through the worker's signals (see app::JobRunner::worker).
  app::GenerationWorker* worker() const { return runner_.worker(); }
  DownloadDialog* download_dialog() const { return download_dialog_; }

 public Q_SLOTS:
  // Queues the current inputs as a job; it starts at once when nothing runs.
  bool start_generation();
  // Continues an interrupted job from its folder (<video>.job): the finished sections are kept,
  // the rest is generated, the video goes where the job first meant it to. False (and a message)
  // when the folder holds no unfinished job.
  bool resume_job(const QString& job_dir);
  // Stops the running job after its current step; waiting jobs stay, the queue pauses.
  void stop_generation();
  void resume_queue();
  void open_log();
  // Model > Download FramePack…: the dialog (made once, not modal); a finished download becomes
  // the model in use.
  void open_download_dialog();
  // Drops the models kept loaded between jobs (framesmith::unload_warm_models).
  void unload_models();

 Q_SIGNALS:
  void generation_finished(int status);
  void queue_idle();  // the last job finished and nothing waits

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void closeEvent(QCloseEvent* e) override;

 private:
  QWidget* build_inputs_column();
  QWidget* build_preview();
  void build_menus();
  void connect_runner();
  void restore_settings(const StartOptions& options);
  void apply_overrides(const StartOptions& options);
  void refresh_queue_view();
  void report(const QString& text, bool error);
  void on_job_started(const app::JobSpec& job);
  void on_progress(const framesmith::Progress& p);
  void on_event(const framesmith::Event& e);
  void on_preview(const QImage& image, const framesmith::Progress& p);
  void on_video_chunk(const QList<QImage>& finals, qint64 first_final, const QString& final_segment,
                      const QList<QImage>& tail, qint64 first_tail, int section, int sections);
  void on_job_finished(const app::JobSpec& job, int status, const QString& message);
  void play_video_file(const QString& path);

  InputsPanel* inputs_ = nullptr;
  QPushButton* start_button_ = nullptr;
  QPushButton* stop_button_ = nullptr;
  PreviewPlayer* player_ = nullptr;
  QProgressBar* progress_bar_ = nullptr;
  QLabel* status_label_ = nullptr;
  DownloadDialog* download_dialog_ = nullptr;
  QLabel* warm_label_ = nullptr;
  QToolButton* unload_button_ = nullptr;
  void refresh_warm_models();
  QToolButton* error_log_button_ = nullptr;
  JobsPanel* jobs_ = nullptr;
  MemoryGraph* graph_ = nullptr;
  EventLog* log_view_ = nullptr;
  QSplitter* main_split_ = nullptr;
  QSplitter* right_split_ = nullptr;
  QSplitter* top_split_ = nullptr;
  QSplitter* bottom_split_ = nullptr;

  std::unique_ptr<QSettings> settings_;
  std::unique_ptr<app::RotatingLog> log_;
  app::JobRunner runner_;
  QElapsedTimer job_clock_;
  double sampling_start_s_ = -1;
  QString last_video_;
  QString last_message_;
  int last_status_ = 0;
};

}  // namespace framesmith::ui
