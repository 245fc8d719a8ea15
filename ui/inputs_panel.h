// The left column: model, start image, prompt and negative prompt, parameters, the estimate and
// where videos go. It turns its widgets into a GenerationRequest and back, and into the settings
// the studio remembers.
#pragma once
#include <QTimer>
#include <QWidget>

#include "framesmith/pipeline.h"
#include "studio_settings.h"

class QDoubleSpinBox;
class QSpinBox;
class QLabel;
class QPlainTextEdit;
class QToolButton;
class QVBoxLayout;

namespace framesmith::ui {

class ImageInput;
class ModelPicker;
class ParametersForm;

class InputsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit InputsPanel(QWidget* parent = nullptr);

  // The request the inputs describe (image included); throws Error naming what is missing.
  GenerationRequest request() const;
  // Parameters, prompts, the video to extend (or none) and (when it names one) the model of
  // `r`; the image is not touched.
  void apply(const GenerationRequest& r);
  // Everything but the window's geometry, for QSettings.
  app::StudioSettings settings() const;
  // Parameters, prompts, output folder and (when it exists) the image of saved settings.
  void restore(const app::StudioSettings& st);

  void set_prompt(const QString& prompt);
  void set_negative_prompt(const QString& prompt);
  void set_output_dir(const QString& dir);
  QString output_dir() const { return output_dir_; }

  ModelPicker* model_picker() const { return model_; }
  ImageInput* image() const { return image_; }
  // The optional end frame (original model): its picture and strength.
  ImageInput* end_image() const { return end_image_; }
  QDoubleSpinBox* end_strength() const { return end_strength_; }
  // The optional video to extend (FramePack-Studio's "Video" / "Video F1"): with one, the job
  // continues it (forwards with F1, backwards with the original model) and needs no start
  // image. Its file is probed here and decoded when the job starts. False (and a message) for a
  // file that is not a video; an empty path clears it.
  bool set_input_video(const QString& path);
  QString input_video() const { return video_path_; }
  ParametersForm* parameters() const { return params_; }
  // The memory plan line under the parameters (filled a moment after the inputs settle).
  QString plan_summary() const { return plan_summary_; }

 Q_SIGNALS:
  void message(const QString& text, bool error);
  void output_dir_changed(const QString& dir);

 private:
  void build_end_frame(QVBoxLayout* v);
  void build_input_video(QVBoxLayout* v);
  void on_parameters_changed();
  void update_estimate();
  void start_plan();
  void show_estimate();

  ModelPicker* model_ = nullptr;
  ImageInput* image_ = nullptr;
  ImageInput* end_image_ = nullptr;
  QDoubleSpinBox* end_strength_ = nullptr;
  QToolButton* end_toggle_ = nullptr;
  QToolButton* video_toggle_ = nullptr;
  QLabel* video_info_ = nullptr;
  QSpinBox* video_context_ = nullptr;
  QString video_path_;
  QPlainTextEdit* prompt_edit_ = nullptr;
  QPlainTextEdit* negative_edit_ = nullptr;
  ParametersForm* params_ = nullptr;
  QLabel* output_label_ = nullptr;
  QString output_dir_;
  QString shape_text_;
  QString plan_summary_;
  QString plan_details_;
  QTimer plan_timer_;    // the plan is made once the inputs have been still for a moment
  int plan_serial_ = 0;  // plans of older inputs are dropped when they come back
};

}  // namespace framesmith::ui
