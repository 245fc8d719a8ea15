#include "parameters_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QRandomGenerator>
#include <QRegularExpressionValidator>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <cmath>

#include "framesmith/error.h"
#include "framesmith/lora_files.h"
#include "framesmith/units.h"
#include "lora_list.h"

namespace framesmith::ui {
namespace {

constexpr double kGB = 1024.0 * 1024.0 * 1024.0;

QDoubleSpinBox* double_box(double lo, double hi, double step, int decimals, const QString& tip) {
  auto* b = new QDoubleSpinBox;
  b->setRange(lo, hi);
  b->setSingleStep(step);
  b->setDecimals(decimals);
  b->setToolTip(tip);
  return b;
}

QSpinBox* int_box(int lo, int hi, int step, const QString& tip) {
  auto* b = new QSpinBox;
  b->setRange(lo, hi);
  b->setSingleStep(step);
  b->setToolTip(tip);
  return b;
}

QGridLayout* compact_grid(QWidget* parent) {
  auto* grid = new QGridLayout(parent);
  grid->setVerticalSpacing(3);
  grid->setHorizontalSpacing(6);
  grid->setContentsMargins(6, 4, 6, 4);
  grid->setColumnStretch(1, 1);
  grid->setColumnStretch(3, 1);
  return grid;
}

// A right-aligned label in column `col` and its field beside it.
void add_row(QGridLayout* grid, int row, int col, const QString& label, QWidget* field,
             int span = 1) {
  auto* l = new QLabel(label);
  l->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  l->setBuddy(field);
  grid->addWidget(l, row, col);
  grid->addWidget(field, row, col + 1, 1, span);
}

}  // namespace

ParametersForm::ParametersForm(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(0, 0, 0, 0);
  v->setSpacing(4);

  // FramePack's demo_gradio.py sliders: ranges, steps and defaults. Two fields a row, so the
  // whole form fits a 768-pixel-high screen.
  auto* video = new QGroupBox("Video");
  auto* grid = compact_grid(video);
  variant_box_ = new QComboBox;
  variant_box_->addItem("Original (FramePackI2V_HY)", "original");
  variant_box_->addItem("F1 (forward only)", "f1");
  variant_box_->setToolTip("Original generates sections backwards from the end; F1 forwards");
  add_row(grid, 0, 0, "Variant", variant_box_, 3);
  seconds_box_ = double_box(1, 120, 0.1, 1, "Total video length (FramePack: 1 to 120 s)");
  seconds_box_->setSuffix(" s");
  add_row(grid, 1, 0, "Length", seconds_box_);
  resolution_box_ = int_box(64, 1024, 16,
                            "Bucket family: the start image is cropped to the nearest bucket of "
                            "about this many pixels a side (FramePack: 640)");
  resolution_box_->setSuffix(" px");
  add_row(grid, 1, 2, "Size", resolution_box_);

  seed_edit_ = new QLineEdit;
  seed_edit_->setValidator(
      new QRegularExpressionValidator(QRegularExpression("[0-9]{1,20}"), seed_edit_));
  seed_edit_->setToolTip("Random seed: the same seed and parameters make the same video");
  random_seed_box_ = new QCheckBox("new each job");
  random_seed_box_->setToolTip("Draw a new random seed for every job");
  auto* dice = new QToolButton;
  dice->setText("Roll");
  dice->setToolTip("Draw a random seed now (Ctrl+R)");
  auto* seed_extra = new QHBoxLayout;
  seed_extra->setContentsMargins(0, 0, 0, 0);
  seed_extra->addWidget(dice);
  seed_extra->addWidget(random_seed_box_);
  add_row(grid, 2, 0, "Seed", seed_edit_);
  grid->addLayout(seed_extra, 2, 2, 1, 2);
  connect(dice, &QToolButton::clicked, this, &ParametersForm::roll_seed);
  connect(seed_edit_, &QLineEdit::textChanged, this, &ParametersForm::changed);

  steps_box_ = int_box(1, 100, 1,
                       "Sampling steps per section (FramePack: 25; changing it is "
                       "not recommended)");
  add_row(grid, 3, 0, "Steps", steps_box_);
  gs_box_ = double_box(1, 32, 0.01, 2, "Distilled CFG scale (FramePack: 10)");
  add_row(grid, 3, 2, "Dist. CFG", gs_box_);
  cache_box_ = new QComboBox;
  cache_box_->addItem("None", "none");
  cache_box_->addItem("TeaCache", "teacache");
  cache_box_->addItem("MagCache", "magcache");
  cache_box_->setToolTip(
      "Reuse the transformer's work between steps. TeaCache (FramePack's default) and MagCache "
      "(FramePack-Studio's) are faster, but can make hands and fingers a little worse");
  add_row(grid, 4, 0, "Cache", cache_box_);
  crf_box_ = int_box(0, 51, 1, "MP4 quality: lower is better, 0 is lossless (FramePack: 16)");
  add_row(grid, 4, 2, "MP4 CRF", crf_box_);
  v->addWidget(video);

  // FramePack hides these (visible=False); they stay one click away.
  auto* advanced_toggle = new QToolButton;
  advanced_toggle->setText("Advanced: CFG, rescale, latent window, cache");
  advanced_toggle->setCheckable(true);
  advanced_toggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  advanced_toggle->setArrowType(Qt::RightArrow);
  advanced_toggle->setAutoRaise(true);
  v->addWidget(advanced_toggle);
  auto* advanced = new QWidget;
  auto* adv = compact_grid(advanced);
  cfg_box_ = double_box(1, 32, 0.01, 2,
                        "Real CFG scale; 1 turns it off (and the negative prompt "
                        "with it). FramePack: 1");
  add_row(adv, 0, 0, "CFG", cfg_box_);
  rs_box_ = double_box(0, 1, 0.01, 2, "CFG re-scale (FramePack: 0)");
  add_row(adv, 0, 2, "Rescale", rs_box_);
  window_box_ = int_box(1, 33, 1, "Latent window size: latent frames per section (FramePack: 9)");
  add_row(adv, 1, 0, "Window", window_box_);
  teacache_threshold_box_ = double_box(0.01, 10, 0.01, 2,
                                       "TeaCache: how much change a step may skip over; higher "
                                       "is faster (FramePack: 0.15)");
  add_row(adv, 1, 2, "TeaCache", teacache_threshold_box_);
  magcache_threshold_box_ = double_box(0.01, 10, 0.01, 2,
                                       "MagCache: the error a run of skipped steps may add up "
                                       "to; higher is faster (FramePack-Studio: 0.1)");
  add_row(adv, 2, 0, "MagCache", magcache_threshold_box_);
  magcache_skips_box_ =
      int_box(0, 100, 1, "MagCache: the most steps skipped in a row (FramePack-Studio: 2)");
  add_row(adv, 2, 2, "Max skips", magcache_skips_box_);
  magcache_retention_box_ = double_box(0, 1, 0.05, 2,
                                       "MagCache: the share of the first steps that always "
                                       "compute (FramePack-Studio: 0.25)");
  add_row(adv, 3, 0, "Retention", magcache_retention_box_);
  blend_box_ =
      int_box(0, 100, 1,
              "Timed prompts (\"[0s: a cat sits] [2s: the cat jumps]\"): at each change of "
              "prompt, one section mixes 1/N of the new prompt into the previous one "
              "(FramePack-Studio's blending); 0: none");
  add_row(adv, 3, 2, "Blend", blend_box_);
  advanced->setVisible(false);
  v->addWidget(advanced);
  connect(advanced_toggle, &QToolButton::toggled, this, [advanced, advanced_toggle](bool on) {
    advanced->setVisible(on);
    advanced_toggle->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
  });

  // LoRAs: collapsed to one line that says which are on.
  auto* lora_toggle = new QToolButton;
  lora_toggle->setObjectName("lora_toggle");
  lora_toggle->setCheckable(true);
  lora_toggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  lora_toggle->setArrowType(Qt::RightArrow);
  lora_toggle->setAutoRaise(true);
  v->addWidget(lora_toggle);
  lora_list_ = new LoraList(QString::fromStdString(default_lora_dir()));
  lora_list_->setVisible(false);
  v->addWidget(lora_list_);
  const auto lora_label = [this, lora_toggle] {
    lora_toggle->setText("LoRA: " + lora_list_->summary());
  };
  lora_label();
  connect(lora_toggle, &QToolButton::toggled, this, [this, lora_toggle](bool on) {
    lora_list_->setVisible(on);
    lora_toggle->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
  });
  connect(lora_list_, &LoraList::changed, this, [this, lora_label] {
    lora_label();
    Q_EMIT changed();
  });

  auto* memory = new QGroupBox("Memory");
  auto* mem = compact_grid(memory);
  device_box_ = new QComboBox;
  device_box_->setEditable(true);
  device_box_->addItems({"cpu", "cuda", "cuda:0", "cuda:1"});
  device_box_->setToolTip("Where the models run: cpu, cuda or cuda:N");
  add_row(mem, 0, 0, "Device", device_box_);
  budget_edit_ = new QLineEdit;
  budget_edit_->setPlaceholderText("whole device");
  budget_edit_->setToolTip(
      "The most device memory Framesmith may use, e.g. 6GiB or 512MiB. On "
      "the cpu device this simulates a device of that size");
  add_row(mem, 0, 2, "Budget", budget_edit_);
  preserve_box_ = double_box(0, 128, 0.1, 1,
                             "Memory kept free for other programs while models "
                             "are loaded (FramePack's GPU inference preserved "
                             "memory: 6 GB; larger means slower)");
  preserve_box_->setSuffix(" GB");
  add_row(mem, 1, 0, "Preserve", preserve_box_);
  estimate_label_ = new QLabel;
  estimate_label_->setWordWrap(true);
  QFont small = estimate_label_->font();
  small.setPointSizeF(small.pointSizeF() * 0.92);
  estimate_label_->setFont(small);
  mem->addWidget(estimate_label_, 2, 0, 1, 4);
  v->addWidget(memory);

  apply(GenerationRequest{});  // FramePack's defaults live in one place: the request struct
  set_crf(16);

  for (QDoubleSpinBox* b :
       {seconds_box_, gs_box_, cfg_box_, rs_box_, preserve_box_, teacache_threshold_box_,
        magcache_threshold_box_, magcache_retention_box_})
    connect(b, &QDoubleSpinBox::valueChanged, this, &ParametersForm::changed);
  for (QSpinBox* b :
       {steps_box_, window_box_, resolution_box_, crf_box_, magcache_skips_box_, blend_box_})
    connect(b, &QSpinBox::valueChanged, this, &ParametersForm::changed);
  connect(variant_box_, &QComboBox::currentIndexChanged, this, &ParametersForm::changed);
  connect(device_box_, &QComboBox::currentTextChanged, this, &ParametersForm::changed);
  connect(cache_box_, &QComboBox::currentIndexChanged, this, &ParametersForm::changed);
  connect(budget_edit_, &QLineEdit::textChanged, this, [this](const QString& text) {
    bool ok = true;
    try {
      if (!text.trimmed().isEmpty()) parse_size(text.trimmed().toStdString());
    } catch (const std::exception&) {
      ok = false;
    }
    budget_edit_->setStyleSheet(ok ? QString() : "QLineEdit { color: #c00; }");
    Q_EMIT changed();
  });
}

void ParametersForm::apply(const GenerationRequest& r) {
  variant_box_->setCurrentIndex(r.variant == TransformerVariant::kF1 ? 1 : 0);
  seconds_box_->setValue(r.seconds);
  seed_edit_->setText(QString::number(qulonglong(r.seed)));
  steps_box_->setValue(r.steps);
  gs_box_->setValue(r.distilled_cfg);
  cfg_box_->setValue(r.cfg);
  rs_box_->setValue(r.cfg_rescale);
  window_box_->setValue(r.latent_window);
  resolution_box_->setValue(r.resolution);
  cache_box_->setCurrentIndex(cache_box_->findData(QString::fromUtf8(to_string(r.cache))));
  teacache_threshold_box_->setValue(r.teacache_threshold);
  magcache_threshold_box_->setValue(r.magcache_threshold);
  magcache_skips_box_->setValue(r.magcache_max_skips);
  magcache_retention_box_->setValue(r.magcache_retention);
  blend_box_->setValue(r.blend_sections);
  device_box_->setCurrentText(QString::fromStdString(r.device));
  budget_edit_->setText(
      r.vram_budget_bytes > 0
          ? QString::fromStdString(format_size(double(r.vram_budget_bytes))).remove(' ')
          : QString());
  preserve_box_->setValue(r.preserved_memory_bytes / kGB);
  lora_list_->set_loras(r.loras);
}

void ParametersForm::fill(GenerationRequest& r) const {
  r.variant = variant_box_->currentData().toString() == "f1" ? TransformerVariant::kF1
                                                             : TransformerVariant::kOriginal;
  r.seconds = seconds_box_->value();
  bool ok = false;
  const qulonglong seed = seed_edit_->text().toULongLong(&ok);
  if (!ok) throw Error("the seed must be a whole number from 0 to 18446744073709551615");
  r.seed = seed;
  r.steps = steps_box_->value();
  r.distilled_cfg = gs_box_->value();
  r.cfg = cfg_box_->value();
  r.cfg_rescale = rs_box_->value();
  r.latent_window = window_box_->value();
  r.resolution = resolution_box_->value();
  r.cache = parse_step_cache(cache_box_->currentData().toString().toStdString());
  r.teacache_threshold = teacache_threshold_box_->value();
  r.magcache_threshold = magcache_threshold_box_->value();
  r.magcache_max_skips = magcache_skips_box_->value();
  r.magcache_retention = magcache_retention_box_->value();
  r.blend_sections = blend_box_->value();
  r.device = device_box_->currentText().trimmed().toStdString();
  const QString budget = budget_edit_->text().trimmed();
  r.vram_budget_bytes = budget.isEmpty() ? 0 : parse_size(budget.toStdString());
  r.preserved_memory_bytes = std::int64_t(std::llround(preserve_box_->value() * kGB));
  r.loras = lora_list_->loras();
}

int ParametersForm::crf() const {
  return crf_box_->value();
}
void ParametersForm::set_crf(int crf) {
  crf_box_->setValue(crf);
}
bool ParametersForm::randomize_seed() const {
  return random_seed_box_->isChecked();
}
void ParametersForm::set_randomize_seed(bool on) {
  random_seed_box_->setChecked(on);
}
int ParametersForm::resolution() const {
  return resolution_box_->value();
}

void ParametersForm::roll_seed() {
  seed_edit_->setText(QString::number(QRandomGenerator::global()->bounded(2147483647)));
}

bool ParametersForm::use_demo_settings_if_default() {
  const GenerationRequest d;
  if (resolution_box_->value() != d.resolution || seconds_box_->value() != d.seconds ||
      steps_box_->value() != d.steps || window_box_->value() != d.latent_window)
    return false;
  // About half a minute on two cores for the tiny model (the same as tools/run-demo.sh).
  resolution_box_->setValue(192);
  seconds_box_->setValue(3);
  steps_box_->setValue(10);
  window_box_->setValue(5);
  cache_box_->setCurrentIndex(cache_box_->findData("none"));
  return true;
}

void ParametersForm::set_estimate_text(const QString& text, const QString& details) {
  estimate_label_->setText(text);
  estimate_label_->setToolTip(details);
}

QString ParametersForm::estimate_text() const {
  return estimate_label_->text();
}

}  // namespace framesmith::ui
