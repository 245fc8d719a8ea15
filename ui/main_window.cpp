#include "main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDesktopServices>
#include <QDir>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QMenuBar>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QScreen>
#include <QScrollArea>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QToolButton>
#include <QUrl>
#include <QVBoxLayout>

#include "download_dialog.h"
#include "event_log.h"
#include "first_run.h"
#include "framesmith/error.h"
#include "framesmith/job_folder.h"
#include "framesmith/lora_files.h"
#include "framesmith/request_json.h"
#include "framesmith/units.h"
#include "image_input.h"
#include "inputs_panel.h"
#include "job_history.h"
#include "job_output.h"
#include "job_progress.h"
#include "jobs_panel.h"
#include "log_file.h"
#include "memory_graph.h"
#include "model_locations.h"
#include "model_picker.h"
#include "parameters_form.h"
#include "preview_player.h"
#include "studio_settings.h"
#include "video_reader.h"

namespace framesmith::ui {
namespace {

// The user's folders as the first-run set-up lays them out (~/Videos/Framesmith,
// ~/.config/framesmith/studio.ini); plain Qt locations when there is no home folder.
QString default_output_dir() {
  try {
    return QString::fromStdString(app::user_folders().videos);
  } catch (const std::exception&) {
    return QDir::homePath() + "/Videos/Framesmith";
  }
}

std::unique_ptr<QSettings> open_settings(const QString& file) {
  QString path = file;
  if (path.isEmpty()) {
    try {
      path = QString::fromStdString(app::user_folders().config) + "/studio.ini";
    } catch (const std::exception&) {
      return std::make_unique<QSettings>();
    }
  }
  return std::make_unique<QSettings>(path, QSettings::IniFormat);
}

bool is_params_file(const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  return suffix == "json" || suffix == "mp4";
}

}  // namespace

MainWindow::MainWindow(const StartOptions& options, QWidget* parent) : QMainWindow(parent) {
  setWindowTitle("Framesmith");
  setAcceptDrops(true);
  settings_ = open_settings(options.settings_file);
  log_ = std::make_unique<app::RotatingLog>(
      options.log_file.isEmpty() ? app::RotatingLog::default_path() : options.log_file);

  main_split_ = new QSplitter(Qt::Horizontal, this);
  main_split_->addWidget(build_inputs_column());
  right_split_ = new QSplitter(Qt::Vertical, main_split_);
  top_split_ = new QSplitter(Qt::Horizontal, right_split_);
  top_split_->addWidget(build_preview());
  jobs_ = new JobsPanel(top_split_);
  bottom_split_ = new QSplitter(Qt::Horizontal, right_split_);
  graph_ = new MemoryGraph(bottom_split_);
  log_view_ = new EventLog(bottom_split_);
  for (QSplitter* s : {main_split_, right_split_, top_split_, bottom_split_})
    s->setChildrenCollapsible(false);
  main_split_->setStretchFactor(1, 1);
  top_split_->setStretchFactor(0, 3);
  top_split_->setStretchFactor(1, 1);
  bottom_split_->setStretchFactor(0, 3);
  bottom_split_->setStretchFactor(1, 2);
  right_split_->setStretchFactor(0, 3);
  right_split_->setStretchFactor(1, 2);
  setCentralWidget(main_split_);
  // 1340x720 fits 1366x768 with a task bar; smaller (or more scaled) screens get what they have.
  const QRect avail = screen()->availableGeometry();
  resize(std::min(1340, avail.width() - 16), std::min(720, int(avail.height() * 0.93)));
  main_split_->setSizes({370, 970});
  top_split_->setSizes({700, 270});
  right_split_->setSizes({400, 280});
  bottom_split_->setSizes({560, 410});

  build_menus();
  auto* log_button = new QToolButton;
  log_button->setText("Log");
  log_button->setToolTip("Open the log file (" + log_->path() + ")");
  log_button->setAutoRaise(true);
  connect(log_button, &QToolButton::clicked, this, &MainWindow::open_log);
  statusBar()->addPermanentWidget(log_button);

  connect_runner();
  connect(jobs_, &JobsPanel::remove_requested, &runner_.queue(), &app::JobQueue::remove);
  connect(jobs_, &JobsPanel::clear_requested, &runner_.queue(), &app::JobQueue::clear);
  connect(jobs_, &JobsPanel::resume_requested, this, &MainWindow::resume_queue);
  connect(jobs_, &JobsPanel::play_requested, this, &MainWindow::play_video_file);
  connect(jobs_, &JobsPanel::load_params_requested, this, &MainWindow::load_params_file);
  connect(jobs_, &JobsPanel::open_folder_requested, this, [](const QString& video) {
    QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(video).absolutePath()));
  });
  connect(inputs_, &InputsPanel::message, this, &MainWindow::report);
  connect(inputs_, &InputsPanel::output_dir_changed, this, [this](const QString& dir) {
    runner_.set_output_dir(dir);
    jobs_->set_history(app::scan_history(dir));
  });

  if (!options.tiny_model_dir.isEmpty()) model_picker()->set_tiny_model_dir(options.tiny_model_dir);
  restore_settings(options);
  apply_overrides(options);
  statusBar()->showMessage("Drop an image, write a prompt, press Generate (Ctrl+Enter). Esc stops.",
                           8000);
}

MainWindow::~MainWindow() = default;  // the runner stops the job and joins its thread

QWidget* MainWindow::build_inputs_column() {
  auto* column = new QWidget;
  auto* outer = new QVBoxLayout(column);
  outer->setContentsMargins(4, 4, 4, 4);
  auto* scroll = new QScrollArea;
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  inputs_ = new InputsPanel;
  scroll->setWidget(inputs_);
  outer->addWidget(scroll, 1);

  // Outside the scroll area: always in reach.
  auto* buttons = new QHBoxLayout;
  start_button_ = new QPushButton("Generate");
  start_button_->setDefault(true);
  start_button_->setToolTip("Start (Ctrl+Enter); while a job runs, queue another");
  stop_button_ = new QPushButton("Stop");
  stop_button_->setEnabled(false);
  stop_button_->setToolTip("Stop after the current step (Esc); what is finished is kept");
  buttons->addWidget(start_button_, 2);
  buttons->addWidget(stop_button_, 1);
  outer->addLayout(buttons);
  column->setMinimumWidth(330);
  connect(start_button_, &QPushButton::clicked, this, &MainWindow::start_generation);
  connect(stop_button_, &QPushButton::clicked, this, &MainWindow::stop_generation);
  return column;
}

QWidget* MainWindow::build_preview() {
  auto* w = new QWidget;
  auto* v = new QVBoxLayout(w);
  v->setContentsMargins(0, 4, 0, 0);
  v->setSpacing(3);
  player_ = new PreviewPlayer;
  v->addWidget(player_, 1);
  progress_bar_ = new QProgressBar;
  progress_bar_->setRange(0, 1000);
  progress_bar_->setTextVisible(false);
  progress_bar_->setMaximumHeight(10);
  v->addWidget(progress_bar_);
  auto* status_row = new QHBoxLayout;
  status_label_ = new QLabel("idle");
  status_label_->setWordWrap(true);
  status_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_log_button_ = new QToolButton;
  error_log_button_->setObjectName("open_log");
  error_log_button_->setText("Open log");
  error_log_button_->setToolTip("What happened, in detail");
  error_log_button_->setVisible(false);
  connect(error_log_button_, &QToolButton::clicked, this, &MainWindow::open_log);
  status_row->addWidget(status_label_, 1);
  status_row->addWidget(error_log_button_, 0, Qt::AlignTop);
  v->addLayout(status_row);
  // What the studio keeps loaded between jobs (models, embeddings), and a way to let go of it.
  auto* warm_row = new QHBoxLayout;
  warm_label_ = new QLabel;
  warm_label_->setObjectName("warm_models");
  unload_button_ = new QToolButton;
  unload_button_->setObjectName("unload_models");
  unload_button_->setText("Unload");
  unload_button_->setToolTip("Free the memory of the models kept loaded for the next job");
  connect(unload_button_, &QToolButton::clicked, this, &MainWindow::unload_models);
  warm_row->addWidget(warm_label_, 1);
  warm_row->addWidget(unload_button_);
  v->addLayout(warm_row);
  refresh_warm_models();
  return w;
}

void MainWindow::build_menus() {
  ImageInput* image = image_input();
  QMenu* file = menuBar()->addMenu("&File");
  file->addAction("&Open image…", QKeySequence::Open, image, &ImageInput::open_dialog);
  file->addAction("&Paste image", QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_V), image,
                  &ImageInput::paste_from_clipboard);
  file->addAction("&Load parameters…", QKeySequence(Qt::CTRL | Qt::Key_L), this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Load parameters", output_dir(),
                                                   "Job parameters (*.json *.mp4)");
    if (!f.isEmpty()) load_params_file(f);
  });
  file->addAction("Open output &folder", QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O), this,
                  [this] {
                    QDir().mkpath(output_dir());
                    QDesktopServices::openUrl(QUrl::fromLocalFile(output_dir()));
                  });
  file->addAction("Open &log file", this, &MainWindow::open_log);
  file->addSeparator();
  file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);

  QMenu* job = menuBar()->addMenu("&Job");
  QAction* generate = job->addAction("&Generate", this, &MainWindow::start_generation);
  generate->setShortcuts(
      {QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)});
  job->addAction("&Stop", QKeySequence(Qt::Key_Escape), this, &MainWindow::stop_generation);
  job->addAction("&Resume queue", this, &MainWindow::resume_queue);
  job->addAction("Resume &interrupted job…", this, [this] {
    const QString dir =
        QFileDialog::getExistingDirectory(this, "Job folder to resume (<video>.job)", output_dir());
    if (!dir.isEmpty()) resume_job(dir);
  });
  job->addAction("New random &seed", QKeySequence(Qt::CTRL | Qt::Key_R), parameters(),
                 &ParametersForm::roll_seed);

  connect(model_picker(), &ModelPicker::download_requested, this,
          &MainWindow::open_download_dialog);
  QMenu* model = menuBar()->addMenu("&Model");
  model->addAction("&Download FramePack…", this, &MainWindow::open_download_dialog);
  model->addAction("Use the &tiny demo model", model_picker(), &ModelPicker::use_tiny_model);

  QMenu* view = menuBar()->addMenu("&View");
  view->addAction("&Follow memory graph", QKeySequence(Qt::CTRL | Qt::Key_G), this,
                  [this] { graph_->set_following(true); });
  view->addAction("Save memory graph as &PNG…", this, [this] {
    const QString f =
        QFileDialog::getSaveFileName(this, "Save memory graph", "memory.png", "PNG image (*.png)");
    if (!f.isEmpty()) graph_->export_png(f);
  });
  view->addAction("Save memory samples as &CSV…", this, [this] {
    const QString f =
        QFileDialog::getSaveFileName(this, "Save memory samples", "memory.csv", "CSV (*.csv)");
    if (!f.isEmpty()) graph_->export_csv(f);
  });
  view->addAction("&Play / pause", player_, &PreviewPlayer::toggle_play);
}

void MainWindow::connect_runner() {
  connect(&runner_, &app::JobRunner::job_started, this, &MainWindow::on_job_started);
  connect(&runner_, &app::JobRunner::progress, this, &MainWindow::on_progress);
  connect(&runner_, &app::JobRunner::event, this, &MainWindow::on_event);
  connect(&runner_, &app::JobRunner::preview, this, &MainWindow::on_preview);
  connect(&runner_, &app::JobRunner::video_chunk, this, &MainWindow::on_video_chunk);
  connect(&runner_, &app::JobRunner::job_finished, this, &MainWindow::on_job_finished);
  connect(&runner_, &app::JobRunner::state_changed, this, &MainWindow::refresh_queue_view);
  connect(&runner_, &app::JobRunner::idle, this, [this] {
    if (!runner_.queue().empty()) return;  // paused with jobs waiting
    if (QFileInfo::exists(last_video_)) {  // all done: the newest video on top of the history
      jobs_->show_history_tab();
      jobs_->select_history(0);
    }
    Q_EMIT queue_idle();
  });
}

void MainWindow::restore_settings(const StartOptions& options) {
  // First start: make the user folders and say, once, how to get the real FramePack weights.
  const app::UserFolders folders = app::user_folders();
  bool first_start = false;
  try {
    first_start = app::ensure_user_folders(folders);
  } catch (const std::exception& e) {
    report(QString("cannot create Framesmith's folders: %1").arg(e.what()), true);
  }
  if (first_start) {
    report(QString::fromStdString(app::real_weights_help(folders.models)), false);
    report(
        "No FramePack model yet: the tiny demo model is in use. Model › Download FramePack… "
        "fetches the real one (about 40 GB) from the Hugging Face hub.",
        false);
  }
  app::StudioSettings st = app::load_settings(*settings_);
  if (st.output_dir.isEmpty()) st.output_dir = default_output_dir();
  if (!options.image_path.isEmpty()) st.image_path.clear();  // the command line's comes next
  inputs_->restore(st);
  if (options.model_dir.isEmpty()) {
    ModelPicker* models = model_picker();
    // First start (or the tiny model was deleted since): something that runs without downloads.
    if (st.model_dir.isEmpty() ||
        (QDir::cleanPath(st.model_dir) == QDir::cleanPath(models->tiny_model_dir()) &&
         !app::is_tiny_model(st.model_dir)))
      models->use_tiny_model();
    else
      models->set_location(st.model_dir);
  }
  restoreGeometry(settings_->value("window/geometry").toByteArray());
  main_split_->restoreState(settings_->value("window/main_split").toByteArray());
  right_split_->restoreState(settings_->value("window/right_split").toByteArray());
  top_split_->restoreState(settings_->value("window/top_split").toByteArray());
  bottom_split_->restoreState(settings_->value("window/bottom_split").toByteArray());
}

void MainWindow::apply_overrides(const StartOptions& o) {
  if (!o.model_dir.isEmpty()) model_picker()->set_location(o.model_dir);
  if (!o.output_dir.isEmpty()) set_output_dir(o.output_dir);
  if (!o.image_path.isEmpty()) load_image(o.image_path);
  if (!o.prompt.isEmpty()) set_prompt(o.prompt);
  if (!o.negative_prompt.isEmpty()) inputs_->set_negative_prompt(o.negative_prompt);
  GenerationRequest r;
  try {
    parameters()->fill(r);
  } catch (const std::exception&) {
    r = GenerationRequest{};
  }
  if (o.seconds) r.seconds = *o.seconds;
  if (o.steps) r.steps = *o.steps;
  if (o.resolution) r.resolution = *o.resolution;
  if (o.window) r.latent_window = *o.window;
  if (o.seed) r.seed = *o.seed;
  if (o.cache) r.cache = *o.cache;
  if (!o.variant.isEmpty())
    r.variant = o.variant == "f1" ? TransformerVariant::kF1 : TransformerVariant::kOriginal;
  if (!o.device.isEmpty()) r.device = o.device.toStdString();
  if (!o.loras.isEmpty()) {
    r.loras.clear();
    for (const QString& l : o.loras) {
      LoraSpec spec = parse_lora_argument(l.toStdString());
      spec.path = resolve_lora_path(spec.path, default_lora_dir());
      r.loras.push_back(spec);
    }
  }
  if (!o.vram_budget.isEmpty()) {
    try {
      r.vram_budget_bytes = parse_size(o.vram_budget.toStdString());
    } catch (const std::exception& e) {
      report(QString("--vram-budget: %1").arg(e.what()), true);
    }
  }
  parameters()->apply(r);
  if (!o.loras.isEmpty()) inputs_->findChild<QToolButton*>("lora_toggle")->setChecked(true);
  if (!o.end_image_path.isEmpty() && inputs_->end_image()->load_file(o.end_image_path))
    inputs_->findChild<QToolButton*>("end_frame_toggle")->setChecked(true);
  if (!o.video_path.isEmpty() && inputs_->set_input_video(o.video_path))
    inputs_->findChild<QToolButton*>("video_toggle")->setChecked(true);
}

void MainWindow::save_settings() {
  settings_->setValue("window/geometry", saveGeometry());
  settings_->setValue("window/main_split", main_split_->saveState());
  settings_->setValue("window/right_split", right_split_->saveState());
  settings_->setValue("window/top_split", top_split_->saveState());
  settings_->setValue("window/bottom_split", bottom_split_->saveState());
  app::save_settings(*settings_, inputs_->settings());
}

ImageInput* MainWindow::image_input() const {
  return inputs_->image();
}
ParametersForm* MainWindow::parameters() const {
  return inputs_->parameters();
}

void MainWindow::refresh_warm_models() {
  const std::vector<WarmModel> kept = warm_models();
  if (kept.empty()) {
    warm_label_->setText("No models kept loaded");
    warm_label_->setToolTip(QString());
    unload_button_->setEnabled(false);
    return;
  }
  const QLocale locale;
  QStringList parts, details;
  std::int64_t host = 0;
  for (const WarmModel& m : kept) {
    host += m.host_bytes;
    parts << QString::fromStdString(m.kind);
    details << QString("%1: %2 in memory, %3 mapped — %4")
                   .arg(QString::fromStdString(m.kind),
                        locale.formattedDataSize(m.host_bytes, 1,
                                                 QLocale::DataSizeTraditionalFormat),
                        locale.formattedDataSize(m.mapped_bytes, 1,
                                                 QLocale::DataSizeTraditionalFormat),
                        QString::fromStdString(m.description));
  }
  parts.removeDuplicates();
  warm_label_->setText(
      QString("Kept loaded for the next job: %1 (%2 in memory)")
          .arg(parts.join(", "),
               locale.formattedDataSize(host, 1, QLocale::DataSizeTraditionalFormat)));
  warm_label_->setToolTip(details.join("\n"));
  unload_button_->setEnabled(true);
}

void MainWindow::unload_models() {
  unload_warm_models();  // a running job keeps what it uses until it ends
  refresh_warm_models();
  report("Unloaded the models kept for the next job", false);
}

void MainWindow::open_download_dialog() {
  if (!download_dialog_) {
    download_dialog_ = new DownloadDialog(this);
    connect(download_dialog_, &DownloadDialog::log_line, this,
            [this](const QString& line) { log_->append("download: " + line); });
    connect(
        download_dialog_, &DownloadDialog::downloaded, this, [this](const QString& where, bool f1) {
          model_picker()->set_variant(f1 ? TransformerVariant::kF1 : TransformerVariant::kOriginal);
          model_picker()->set_location(where);
          report("Downloaded model set in use: " + where, false);
        });
  }
  download_dialog_->show();
  download_dialog_->raise();
  download_dialog_->activateWindow();
}

ModelPicker* MainWindow::model_picker() const {
  return inputs_->model_picker();
}
QString MainWindow::output_dir() const {
  return inputs_->output_dir();
}
QString MainWindow::status_text() const {
  return status_label_->text();
}
QString MainWindow::log_path() const {
  return log_->path();
}
GenerationRequest MainWindow::current_request() const {
  return inputs_->request();
}
void MainWindow::set_prompt(const QString& prompt) {
  inputs_->set_prompt(prompt);
}
void MainWindow::set_output_dir(const QString& dir) {
  inputs_->set_output_dir(dir);
}
bool MainWindow::load_image(const QString& path) {
  return image_input()->load_file(path);
}

bool MainWindow::load_params_file(const QString& path) {
  GenerationRequest r;
  try {
    r = app::load_job_params(path);
  } catch (const std::exception& e) {
    report(QString::fromStdString(e.what()), true);
    return false;
  }
  inputs_->apply(r);
  // The job's start image, as it was cropped, sits beside its parameters.
  const QFileInfo fi(path);
  const QString input = fi.dir().filePath(fi.completeBaseName() + ".input.png");
  if (QFileInfo::exists(input)) load_image(input);
  report("loaded the parameters of " + fi.fileName(), false);
  return true;
}

bool MainWindow::start_generation() {
  if (parameters()->randomize_seed()) parameters()->roll_seed();
  GenerationRequest r;
  try {
    r = current_request();
  } catch (const std::exception& e) {
    report(QString::fromStdString(e.what()), true);
    return false;
  }
  save_settings();  // what was asked for survives a crash
  const int id = runner_.enqueue(std::move(r), parameters()->crf());
  if (runner_.current().id != id) log_view_->add_message(QString("job %1 queued").arg(id));
  return true;
}

bool MainWindow::resume_job(const QString& job_dir) {
  try {
    const std::string dir = job_dir.toStdString();
    const JobFolderInfo info = inspect_job_folder(dir);
    if (!info.has_job) throw Error(dir + ": this folder holds no Framesmith job (no job.json)");
    if (info.finished())
      throw Error(dir + ": this job finished all " + std::to_string(info.sections_total) +
                  " sections already");
    GenerationRequest r = load_job_request(dir);  // resume = true, the saved parameters
    const app::SavedOutput out = app::read_saved_output(dir);
    runner_.enqueue(std::move(r), out.crf, QString::fromStdString(out.video_path));
    log_view_->add_message(QString("resuming %1: %2 of %3 sections kept")
                               .arg(job_dir)
                               .arg(info.sections_done)
                               .arg(info.sections_total));
    return true;
  } catch (const std::exception& e) {
    report(QString::fromStdString(e.what()), true);
    return false;
  }
}

void MainWindow::stop_generation() {
  if (!is_running()) return;
  runner_.stop();
  status_label_->setText("stopping after the current step…");
  log_view_->add_message("stop requested");
}

void MainWindow::resume_queue() {
  runner_.resume();
}

void MainWindow::refresh_queue_view() {
  jobs_->show_queue(is_running() ? &runner_.current() : nullptr, runner_.queue().jobs(),
                    runner_.paused());
  start_button_->setText(is_running() ? "Add to queue" : "Generate");
  stop_button_->setEnabled(is_running());
}

void MainWindow::report(const QString& text, bool error) {
  last_message_ = text;
  statusBar()->showMessage(text, error ? 0 : 8000);
  statusBar()->setStyleSheet(error ? "QStatusBar { color: #b00020; }" : QString());
  if (error) log_->append("error: " + text);
  log_view_->add_message(text, error ? "error" : "info");
}

void MainWindow::open_log() {
  log_->append("log opened");  // makes sure the file exists
  QDesktopServices::openUrl(QUrl::fromLocalFile(log_->path()));
}

void MainWindow::on_job_started(const app::JobSpec& job) {
  graph_->clear();
  graph_->set_preserved_bytes(double(job.request.preserved_memory_bytes));
  log_view_->clear();
  player_->clear("Starting…");
  player_->set_video_path(QString());
  progress_bar_->setValue(0);
  sampling_start_s_ = -1;
  job_clock_.start();
  status_label_->setStyleSheet(QString());
  status_label_->setText("starting…");
  error_log_button_->setVisible(false);
  const QString json = QString::fromStdString(request_to_json(job.request)).simplified();
  log_->append(QString("job %1 start %2 %3").arg(job.id).arg(job.video_path, json));
  log_view_->add_message(QString("job %1 started: %2").arg(job.id).arg(job.video_path));
}

void MainWindow::on_progress(const Progress& p) {
  const double elapsed = job_clock_.elapsed() / 1000.0;
  if (p.sections > 0 && sampling_start_s_ < 0) sampling_start_s_ = elapsed;
  const app::ProgressText text = app::describe_progress(p, elapsed, sampling_start_s_);
  status_label_->setText(text.status);
  progress_bar_->setValue(int(text.fraction * 1000));
  setWindowTitle(text.title + " — Framesmith");
}

void MainWindow::on_event(const Event& e) {
  graph_->add_event(e);
  log_view_->add_event(e);
  if (e.type != EventType::kMemory && e.type != EventType::kPreview &&
      e.type != EventType::kProgress)
    log_->append(QString("job %1 %2")
                     .arg(runner_.current().id)
                     .arg(QString::fromStdString(to_json_line(e))));
}

void MainWindow::on_preview(const QImage& image, const Progress& p) {
  player_->show_latent_preview(image, QString("latent preview · section %1/%2 · step %3/%4")
                                          .arg(p.section)
                                          .arg(p.sections)
                                          .arg(p.step)
                                          .arg(p.steps));
}

void MainWindow::on_video_chunk(const QList<QImage>& finals, qint64 first_final,
                                const QString& final_segment, const QList<QImage>& tail,
                                qint64 first_tail, int section, int sections) {
  player_->add_chunk(finals, first_final, final_segment, tail, first_tail);
  player_->set_video_path(runner_.current().video_path);
  log_view_->add_message(QString("video so far: %1 frames after section %2 of %3 (playing)")
                             .arg(player_->frame_count())
                             .arg(section)
                             .arg(sections));
}

void MainWindow::on_job_finished(const app::JobSpec& job, int status, const QString& message) {
  refresh_warm_models();
  const double seconds = job_clock_.elapsed() / 1000.0;
  const QString& video = job.video_path;
  const bool ok = status == int(StatusCode::kOk);
  const bool cancelled = status == int(StatusCode::kCancelled);
  const bool has_video = QFileInfo::exists(video);
  const QString status_name = QString::fromUtf8(to_string(StatusCode(status)));
  last_status_ = status;
  last_video_ = video;
  last_message_ = ok ? QString() : message;
  player_->end_previews();
  graph_->flush();
  if (has_video) {
    player_->set_video_path(video);
    jobs_->add_history(app::history_entry(video));
  } else {
    player_->clear(ok || cancelled ? QString("No video was made.")
                                   : QString("No video was made: %1.").arg(status_name));
  }
  QString text;
  if (ok) {
    progress_bar_->setValue(1000);
    text = QString("Done in %1: %2").arg(app::clock_text(seconds), video);
    setWindowTitle("Done — Framesmith");
  } else {
    text = QString("%1: %2").arg(status_name, message);
    if (has_video) text += QString(" (kept what was finished: %1)").arg(video);
    setWindowTitle("Framesmith");
  }
  status_label_->setStyleSheet(ok || cancelled ? QString() : "color: #b00020;");
  status_label_->setText(text);
  error_log_button_->setVisible(!ok && !cancelled);
  log_->append(QString("job %1 %2 after %3 s: %4")
                   .arg(job.id)
                   .arg(status_name)
                   .arg(seconds, 0, 'f', 1)
                   .arg(ok ? video : message));
  log_view_->add_message(text, ok || cancelled ? "info" : "error");
  Q_EMIT generation_finished(status);
}

void MainWindow::play_video_file(const QString& path) {
  if (is_running()) {
    report("the player shows the running job; play this video when it has finished", false);
    return;
  }
  // Played from disk, never decoded whole (a minute at 640 px would be ~2 GB of frames): from the
  // job's segments when its folder still lists them (a step back decodes one segment again),
  // else from the file itself.
  player_->clear();
  player_->set_video_path(path);
  int total = 0;
  try {
    app::VideoReader reader;
    reader.open(path.toStdString());
    total = reader.frame_count();
  } catch (const std::exception& e) {
    player_->clear(QString::fromStdString(e.what()));
    report(QString::fromStdString(e.what()), true);
    return;
  }
  QList<QPair<qint64, QString>> files;
  for (const app::VideoSegment& s :
       app::read_segment_playlist(app::default_job_dir(path.toStdString()))) {
    if (s.first_frame >= total) break;
    files.append({s.first_frame, QString::fromStdString(s.path)});
  }
  if (files.isEmpty()) files.append({0, path});
  player_->set_video_files(files, total);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls() || e->mimeData()->hasImage()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  const QMimeData* mime = e->mimeData();
  if (mime->hasUrls() && !mime->urls().isEmpty() && mime->urls().first().isLocalFile()) {
    const QString path = mime->urls().first().toLocalFile();
    if (is_params_file(path))
      load_params_file(path);
    else
      load_image(path);
  } else if (mime->hasImage()) {
    image_input()->set_image(qvariant_cast<QImage>(mime->imageData()), "dropped image");
  }
  e->acceptProposedAction();
}

void MainWindow::closeEvent(QCloseEvent* e) {
  save_settings();
  runner_.stop();  // finished sections are already on disk
  QMainWindow::closeEvent(e);
}

}  // namespace framesmith::ui
