// The job's parameters with FramePack's defaults and ranges (demo_gradio.py's sliders), the
// memory settings (device, budget, preserved memory) and the estimate of what Start will make.
#pragma once
#include <QWidget>

#include "framesmith/pipeline.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace framesmith::ui {

class LoraList;

class ParametersForm : public QWidget {
  Q_OBJECT
 public:
  explicit ParametersForm(QWidget* parent = nullptr);

  // Sets every parameter widget from `r` (model, prompts and pixels are not this form's).
  void apply(const GenerationRequest& r);
  // Writes the widgets' values into `r`; throws Error for a budget that does not parse.
  void fill(GenerationRequest& r) const;
  int crf() const;
  void set_crf(int crf);
  bool randomize_seed() const;
  void set_randomize_seed(bool on);
  // A new random seed into the seed box (Start does this when "randomize" is ticked).
  void roll_seed();
  int resolution() const;
  // Settings that let the tiny random model finish in about a minute on two cores, applied only
  // while the parameters are still FramePack's defaults (a user's own choices stay). True when
  // they were applied.
  bool use_demo_settings_if_default();
  // The lines under the memory settings; `details` is their tooltip.
  void set_estimate_text(const QString& text, const QString& details = QString());
  QString estimate_text() const;
  LoraList* lora_list() const { return lora_list_; }

 Q_SIGNALS:
  void changed();

 private:
  QComboBox* variant_box_ = nullptr;
  QDoubleSpinBox* seconds_box_ = nullptr;
  QLineEdit* seed_edit_ = nullptr;
  QCheckBox* random_seed_box_ = nullptr;
  QSpinBox* steps_box_ = nullptr;
  QDoubleSpinBox* gs_box_ = nullptr;
  QDoubleSpinBox* cfg_box_ = nullptr;
  QDoubleSpinBox* rs_box_ = nullptr;
  QSpinBox* window_box_ = nullptr;
  QSpinBox* resolution_box_ = nullptr;
  QComboBox* cache_box_ = nullptr;
  QDoubleSpinBox* teacache_threshold_box_ = nullptr;
  QDoubleSpinBox* magcache_threshold_box_ = nullptr;
  QSpinBox* magcache_skips_box_ = nullptr;
  QDoubleSpinBox* magcache_retention_box_ = nullptr;
  QSpinBox* blend_box_ = nullptr;
  QSpinBox* crf_box_ = nullptr;
  QComboBox* device_box_ = nullptr;
  QLineEdit* budget_edit_ = nullptr;
  QDoubleSpinBox* preserve_box_ = nullptr;
  QLabel* estimate_label_ = nullptr;
  LoraList* lora_list_ = nullptr;
};

}  // namespace framesmith::ui
