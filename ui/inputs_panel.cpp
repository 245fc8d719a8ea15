#include "inputs_panel.h"

#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>
#include <memory>

#include "framesmith/error.h"
#include "framesmith/request_json.h"
#include "image_input.h"
#include "job_estimate.h"
#include "model_picker.h"
#include "parameters_form.h"
#include "video_reader.h"

namespace framesmith::ui {

InputsPanel::InputsPanel(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(0, 0, 6, 0);
  v->setSpacing(5);

  model_ = new ModelPicker;
  v->addWidget(model_);
  image_ = new ImageInput;
  image_->setMinimumHeight(170);
  v->addWidget(image_, 1);
  build_end_frame(v);
  build_input_video(v);
  prompt_edit_ = new QPlainTextEdit;
  prompt_edit_->setObjectName("prompt");
  prompt_edit_->setPlaceholderText(
      "Prompt: what happens in the video. Timed: [0s: a cat sits] [2s: the cat jumps]");
  prompt_edit_->setTabChangesFocus(true);
  const int line = prompt_edit_->fontMetrics().lineSpacing();
  prompt_edit_->setFixedHeight(line * 3 + 12);
  v->addWidget(prompt_edit_);
  negative_edit_ = new QPlainTextEdit;
  negative_edit_->setObjectName("negative_prompt");
  negative_edit_->setPlaceholderText("Negative prompt (used when CFG > 1)");
  negative_edit_->setTabChangesFocus(true);
  negative_edit_->setFixedHeight(line * 2 + 10);
  v->addWidget(negative_edit_);
  params_ = new ParametersForm;
  v->addWidget(params_);

  auto* out_row = new QHBoxLayout;
  output_label_ = new QLabel;
  output_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* out_button = new QToolButton;
  out_button->setText("…");
  out_button->setToolTip("Choose where videos are saved");
  out_row->addWidget(new QLabel("Save to"));
  out_row->addWidget(output_label_, 1);
  out_row->addWidget(out_button);
  v->addLayout(out_row);

  connect(out_button, &QToolButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Save videos to", output_dir_);
    if (!d.isEmpty()) set_output_dir(d);
  });
  connect(image_, &ImageInput::image_changed, this, &InputsPanel::update_estimate);
  connect(image_, &ImageInput::rejected, this,
          [this](const QString& m) { Q_EMIT message(m, true); });
  connect(params_, &ParametersForm::changed, this, &InputsPanel::on_parameters_changed);
  connect(model_, &ModelPicker::location_changed, this, [this] {
    if (model_->status().usable && model_->is_tiny() && params_->use_demo_settings_if_default())
      Q_EMIT message(
          "Tiny model: demo settings (192 px, 3 s, 10 steps, window 5) so a job takes about a "
          "minute on a CPU",
          false);
    update_estimate();
  });
  connect(model_, &ModelPicker::message, this, &InputsPanel::message);
  plan_timer_.setSingleShot(true);
  plan_timer_.setInterval(400);
  connect(&plan_timer_, &QTimer::timeout, this, &InputsPanel::start_plan);
  update_estimate();
}

// "Original with Endframe": collapsed to one line until used.
void InputsPanel::build_end_frame(QVBoxLayout* v) {
  end_toggle_ = new QToolButton;
  end_toggle_->setObjectName("end_frame_toggle");
  end_toggle_->setCheckable(true);
  end_toggle_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  end_toggle_->setArrowType(Qt::RightArrow);
  end_toggle_->setAutoRaise(true);
  end_toggle_->setText("End frame: none");
  end_toggle_->setToolTip("An image the video ends on (original model only)");
  v->addWidget(end_toggle_);
  auto* box = new QWidget;
  auto* row = new QHBoxLayout(box);
  row->setContentsMargins(0, 0, 0, 0);
  end_image_ = new ImageInput;
  end_image_->setObjectName("end_image");
  end_image_->setMinimumHeight(110);
  row->addWidget(end_image_, 1);
  auto* side = new QVBoxLayout;
  auto* clear = new QPushButton("Clear");
  end_strength_ = new QDoubleSpinBox;
  end_strength_->setObjectName("end_strength");
  end_strength_->setRange(0, 1);
  end_strength_->setSingleStep(0.05);
  end_strength_->setValue(1.0);
  end_strength_->setToolTip(
      "How strongly the video is held to the end image (FramePack-Studio's end-frame influence)");
  side->addWidget(new QLabel("Strength"));
  side->addWidget(end_strength_);
  side->addWidget(clear);
  side->addStretch(1);
  row->addLayout(side);
  box->setVisible(false);
  v->addWidget(box);
  connect(end_toggle_, &QToolButton::toggled, this, [this, box](bool on) {
    box->setVisible(on);
    end_toggle_->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
  });
  connect(clear, &QPushButton::clicked, end_image_, &ImageInput::clear);
  connect(end_image_, &ImageInput::image_changed, this, [this] {
    end_toggle_->setText(end_image_->has_image()
                             ? "End frame: " + QFileInfo(end_image_->source()).fileName()
                             : QString("End frame: none"));
  });
  connect(end_image_, &ImageInput::rejected, this,
          [this](const QString& m) { Q_EMIT message(m, true); });
  // The end picture is cropped to the start picture's bucket: show that crop.
  connect(image_, &ImageInput::image_changed, this,
          [this] { end_image_->set_target_bucket(image_->bucket()); });
}

// A collapsed row, as the end frame's: the clip's name and what it holds, Choose… / Clear, and
// FramePack-Studio's "adherence to video" (context latents).
void InputsPanel::build_input_video(QVBoxLayout* v) {
  video_toggle_ = new QToolButton;
  video_toggle_->setObjectName("video_toggle");
  video_toggle_->setCheckable(true);
  video_toggle_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  video_toggle_->setArrowType(Qt::RightArrow);
  video_toggle_->setAutoRaise(true);
  video_toggle_->setText("Extend a video: none");
  video_toggle_->setToolTip(
      "Continue a video instead of starting from the image: F1 forwards, the original model "
      "backwards towards the clip; the result is the clip followed by the new seconds");
  v->addWidget(video_toggle_);
  auto* box = new QWidget;
  auto* grid = new QVBoxLayout(box);
  grid->setContentsMargins(0, 0, 0, 0);
  video_info_ = new QLabel("no video: the job starts from the start image");
  video_info_->setObjectName("video_info");
  video_info_->setWordWrap(true);
  grid->addWidget(video_info_);
  auto* row = new QHBoxLayout;
  auto* choose = new QPushButton("Choose video…");
  auto* clear = new QPushButton("Clear");
  video_context_ = new QSpinBox;
  video_context_->setObjectName("video_context");
  video_context_->setRange(1, 10);
  video_context_->setValue(5);
  video_context_->setToolTip(
      "How many of the clip's (and the newest) latents each section sees as its clean context: "
      "more holds the new frames closer to the video (FramePack-Studio's adherence to video)");
  row->addWidget(choose);
  row->addWidget(clear);
  row->addStretch(1);
  row->addWidget(new QLabel("Context"));
  row->addWidget(video_context_);
  grid->addLayout(row);
  box->setVisible(false);
  v->addWidget(box);
  connect(video_toggle_, &QToolButton::toggled, this, [this, box](bool on) {
    box->setVisible(on);
    video_toggle_->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
  });
  connect(choose, &QPushButton::clicked, this, [this] {
    const QString path =
        QFileDialog::getOpenFileName(this, "Video to extend", QFileInfo(video_path_).absolutePath(),
                                     "Videos (*.mp4 *.mkv *.mov *.webm *.avi);;All files (*)");
    if (!path.isEmpty()) set_input_video(path);
  });
  connect(clear, &QPushButton::clicked, this, [this] { set_input_video(QString()); });
}

bool InputsPanel::set_input_video(const QString& path) {
  if (path.isEmpty()) {
    video_path_.clear();
    video_toggle_->setText("Extend a video: none");
    video_info_->setText("no video: the job starts from the start image");
    update_estimate();
    return true;
  }
  app::VideoReader reader;
  try {
    reader.open(path.toStdString());  // the container only: frames are decoded by the job
  } catch (const std::exception& e) {
    Q_EMIT message(QString::fromStdString(e.what()), true);
    return false;
  }
  video_path_ = QFileInfo(path).absoluteFilePath();
  const QString name = QFileInfo(path).fileName();
  video_toggle_->setText("Extend a video: " + name);
  QString info = QString("%1: %2 frames, %3 × %4, %5 fps, %6")
                     .arg(name)
                     .arg(reader.frame_count())
                     .arg(reader.width())
                     .arg(reader.height())
                     .arg(reader.fps(), 0, 'f', 2)
                     .arg(QString::fromStdString(reader.pixel_format()));
  info += " — the job adds its seconds after the clip; the start image is not used";
  video_info_->setText(info);
  update_estimate();
  return true;
}

void InputsPanel::on_parameters_changed() {
  image_->set_resolution(params_->resolution());
  end_image_->set_target_bucket(image_->bucket());
  GenerationRequest r;
  try {
    params_->fill(r);
    model_->set_variant(r.variant);
  } catch (const std::exception&) {
    // A half-typed budget or seed: the estimate line says what is wrong.
  }
  update_estimate();
}

GenerationRequest InputsPanel::request() const {
  GenerationRequest r;
  r.model_dir = model_->location().toStdString();
  params_->fill(r);
  const bool video = !video_path_.isEmpty();
  if (video) {
    r.input_video_source.path = video_path_.toStdString();
    r.video_context_frames = video_context_->value();
  } else {
    r.image = image_->frames();
  }
  if (end_image_->has_image()) {
    r.end_image = end_image_->frames();
    r.end_frame_strength = end_strength_->value();
  }
  r.prompt = prompt_edit_->toPlainText().trimmed().toStdString();
  r.negative_prompt = negative_edit_->toPlainText().trimmed().toStdString();
  if (r.model_dir.empty()) throw Error("choose a model first (Tiny, HF or a folder)");
  if (!model_->status().usable && !model_->status().summary.isEmpty())
    throw Error("the model set is incomplete: " + model_->status().summary.toStdString());
  if (!video && !image_->has_image())
    throw Error("choose a start image first (drop, paste or Ctrl+O), or a video to extend");
  if (r.prompt.empty()) throw Error("write a prompt first");
  validate_request(r);
  return r;
}

void InputsPanel::apply(const GenerationRequest& r) {
  if (!r.model_dir.empty() && QString::fromStdString(r.model_dir) != model_->location())
    model_->set_location(QString::fromStdString(r.model_dir));
  params_->apply(r);
  set_prompt(QString::fromStdString(r.prompt));
  set_negative_prompt(QString::fromStdString(r.negative_prompt));
  // A job's video goes with it (and a job without one clears it): its file is probed again.
  set_input_video(QString::fromStdString(r.input_video_source.path));
  if (!r.input_video_source.path.empty()) video_context_->setValue(r.video_context_frames);
  on_parameters_changed();
}

app::StudioSettings InputsPanel::settings() const {
  app::StudioSettings st;
  st.model_dir = model_->location();
  st.output_dir = output_dir_;
  st.image_path = QFileInfo::exists(image_->source()) ? image_->source() : QString();
  try {
    params_->fill(st.params);
  } catch (const std::exception&) {
    // A half-typed budget or seed: the other parameters are still worth keeping.
  }
  st.params.model_dir = st.model_dir.toStdString();
  st.params.prompt = prompt_edit_->toPlainText().toStdString();
  st.params.negative_prompt = negative_edit_->toPlainText().toStdString();
  st.crf = params_->crf();
  st.randomize_seed = params_->randomize_seed();
  return st;
}

void InputsPanel::restore(const app::StudioSettings& st) {
  params_->apply(st.params);
  params_->set_crf(st.crf);
  params_->set_randomize_seed(st.randomize_seed);
  set_prompt(QString::fromStdString(st.params.prompt));
  set_negative_prompt(QString::fromStdString(st.params.negative_prompt));
  if (!st.output_dir.isEmpty()) set_output_dir(st.output_dir);
  if (!st.image_path.isEmpty() && QFileInfo::exists(st.image_path))
    image_->load_file(st.image_path);
  on_parameters_changed();
}

void InputsPanel::set_prompt(const QString& prompt) {
  prompt_edit_->setPlainText(prompt);
}

void InputsPanel::set_negative_prompt(const QString& prompt) {
  negative_edit_->setPlainText(prompt);
}

void InputsPanel::set_output_dir(const QString& dir) {
  output_dir_ = QDir::cleanPath(dir);
  output_label_->setText(
      output_label_->fontMetrics().elidedText(output_dir_, Qt::ElideMiddle, 230));
  output_label_->setToolTip(output_dir_);
  Q_EMIT output_dir_changed(output_dir_);
}

void InputsPanel::update_estimate() {
  GenerationRequest r;
  try {
    params_->fill(r);
  } catch (const std::exception& e) {
    shape_text_ = QString::fromStdString(e.what());
    plan_summary_.clear();
    plan_details_.clear();
    show_estimate();
    return;
  }
  shape_text_ =
      app::describe_estimate(app::estimate_job(r, image_->frames().width, image_->frames().height));
  ++plan_serial_;  // a plan still on its way describes other inputs now
  plan_summary_ = model_->status().usable ? "memory plan: …" : QString();
  plan_details_.clear();
  show_estimate();
  if (model_->status().usable) plan_timer_.start();
}

void InputsPanel::start_plan() {
  GenerationRequest r;
  try {
    params_->fill(r);
  } catch (const std::exception&) {
    return;
  }
  r.model_dir = model_->location().toStdString();
  const int w = image_->frames().width, h = image_->frames().height;
  const int serial = plan_serial_;
  // The planner reads configs and weight headers: off the GUI thread.
  auto plan = std::make_shared<app::MemoryPlanText>();
  QThread* thread = QThread::create([r, w, h, plan] { *plan = app::memory_plan(r, w, h); });
  QPointer<InputsPanel> self(this);
  connect(thread, &QThread::finished, this, [self, thread, plan, serial] {
    thread->deleteLater();
    if (!self || serial != self->plan_serial_) return;
    self->plan_summary_ = plan->summary;
    self->plan_details_ = plan->details;
    self->show_estimate();
  });
  thread->start();
}

void InputsPanel::show_estimate() {
  params_->set_estimate_text(
      plan_summary_.isEmpty() ? shape_text_ : shape_text_ + "\n" + plan_summary_,
      plan_details_.isEmpty() ? QString() : "The engine's memory plan:\n" + plan_details_);
}

}  // namespace framesmith::ui
