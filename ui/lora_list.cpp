#include "lora_list.h"

#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QPushButton>
#include <QSlider>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "framesmith/lora_files.h"

namespace framesmith::ui {
namespace {

constexpr int kPathRole = Qt::UserRole;
constexpr int kStrengthRole = Qt::UserRole + 1;
constexpr double kSliderSteps = 100.0;  // slider units per strength unit
constexpr double kSliderRange = 2.0;    // the slider covers -2..2; the number box all of ±10

}  // namespace

LoraList::LoraList(QString folder, QWidget* parent) : QWidget(parent), folder_(std::move(folder)) {
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(6, 2, 6, 2);
  v->setSpacing(3);
  list_ = new QListWidget;
  list_->setObjectName("lora_list");
  list_->setDragDropMode(QAbstractItemView::InternalMove);
  list_->setDefaultDropAction(Qt::MoveAction);
  list_->setSelectionMode(QAbstractItemView::SingleSelection);
  list_->setToolTip(
      "LoRAs applied to the transformer, top first. Untick to leave one out; drag to reorder");
  list_->setMaximumHeight(96);
  v->addWidget(list_);

  auto* row = new QHBoxLayout;
  auto* add_button = new QPushButton("Add file…");
  add_button->setToolTip(
      "Add LoRA files (.safetensors: diffusers, kohya/musubi or HunyuanVideo "
      "key names)");
  folder_button_ = new QToolButton;
  folder_button_->setText("From folder");
  folder_button_->setPopupMode(QToolButton::InstantPopup);
  folder_button_->setToolTip("The LoRA folder: " + folder_);
  auto* menu = new QMenu(folder_button_);
  folder_button_->setMenu(menu);
  remove_button_ = new QPushButton("Remove");
  row->addWidget(add_button);
  row->addWidget(folder_button_);
  row->addWidget(remove_button_);
  row->addStretch(1);
  v->addLayout(row);

  auto* strength = new QHBoxLayout;
  auto* label = new QLabel("Strength");
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setRange(int(-kSliderRange * kSliderSteps), int(kSliderRange * kSliderSteps));
  slider_->setToolTip("The selected LoRA's strength (negative reverses it)");
  strength_box_ = new QDoubleSpinBox;
  strength_box_->setObjectName("lora_strength");
  strength_box_->setRange(-kMaxLoraStrength, kMaxLoraStrength);
  strength_box_->setSingleStep(0.05);
  strength_box_->setDecimals(2);
  label->setBuddy(strength_box_);
  strength->addWidget(label);
  strength->addWidget(slider_, 1);
  strength->addWidget(strength_box_);
  v->addLayout(strength);

  connect(add_button, &QPushButton::clicked, this, &LoraList::add_files);
  connect(menu, &QMenu::aboutToShow, this, &LoraList::fill_folder_menu);
  connect(remove_button_, &QPushButton::clicked, this, &LoraList::remove_selected);
  connect(list_, &QListWidget::currentItemChanged, this, &LoraList::show_selected);
  connect(list_, &QListWidget::itemChanged, this, [this] {
    if (!updating_) Q_EMIT changed();
  });
  // A drag inside the list moves rows: the order is the order of application.
  connect(list_->model(), &QAbstractItemModel::rowsMoved, this, &LoraList::changed);
  connect(slider_, &QSlider::valueChanged, this, [this](int v) {
    if (!updating_) set_strength(v / kSliderSteps);
  });
  connect(strength_box_, &QDoubleSpinBox::valueChanged, this, [this](double s) {
    if (!updating_) set_strength(s);
  });
  show_selected();
}

std::vector<LoraSpec> LoraList::loras() const {
  std::vector<LoraSpec> out;
  for (int i = 0; i < list_->count(); ++i) {
    const QListWidgetItem* item = list_->item(i);
    if (item->checkState() != Qt::Checked) continue;
    out.push_back(
        {item->data(kPathRole).toString().toStdString(), item->data(kStrengthRole).toDouble()});
  }
  return out;
}

void LoraList::set_loras(const std::vector<LoraSpec>& loras) {
  updating_ = true;
  list_->clear();
  updating_ = false;
  for (const LoraSpec& l : loras) add(QString::fromStdString(l.path), l.strength);
  if (loras.empty()) {
    show_selected();
    Q_EMIT changed();
  }
}

void LoraList::add(const QString& path, double strength) {
  updating_ = true;
  auto* item = new QListWidgetItem;
  item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsUserCheckable |
                 Qt::ItemIsDragEnabled);
  item->setCheckState(Qt::Checked);
  item->setData(kPathRole, path);
  item->setData(kStrengthRole, strength);
  item->setToolTip(path);
  label(item);
  list_->addItem(item);
  updating_ = false;
  list_->setCurrentItem(item);
  Q_EMIT changed();
}

int LoraList::count() const {
  return list_->count();
}

QString LoraList::summary() const {
  const std::vector<LoraSpec> on = loras();
  if (on.empty()) return list_->count() ? "all off" : "none";
  QStringList parts;
  for (const LoraSpec& l : on)
    parts << QFileInfo(QString::fromStdString(l.path)).completeBaseName() + " " +
                 QString::number(l.strength, 'f', 2);
  return parts.join(", ");
}

void LoraList::label(QListWidgetItem* item) {
  const QString name = QFileInfo(item->data(kPathRole).toString()).completeBaseName();
  item->setText(name + "    × " + QString::number(item->data(kStrengthRole).toDouble(), 'f', 2));
}

void LoraList::add_files() {
  const QStringList files = QFileDialog::getOpenFileNames(
      this, "Add LoRA files", folder_, "LoRA files (*.safetensors);;All files (*)");
  for (const QString& f : files) add(f);
}

void LoraList::fill_folder_menu() {
  QMenu* menu = folder_button_->menu();
  menu->clear();
  const std::vector<std::string> files = list_lora_files(folder_.toStdString());
  if (files.empty()) {
    menu->addAction("No LoRA files in " + folder_)->setEnabled(false);
    return;
  }
  for (const std::string& f : files) {
    const QString path = QString::fromStdString(f);
    menu->addAction(QFileInfo(path).completeBaseName(), this, [this, path] { add(path); });
  }
}

void LoraList::remove_selected() {
  delete list_->currentItem();
  show_selected();
  Q_EMIT changed();
}

// The strength widgets follow the selected row (disabled without one).
void LoraList::show_selected() {
  const QListWidgetItem* item = list_->currentItem();
  updating_ = true;
  const double s = item ? item->data(kStrengthRole).toDouble() : 1.0;
  strength_box_->setValue(s);
  slider_->setValue(int(std::lround(std::clamp(s, -kSliderRange, kSliderRange) * kSliderSteps)));
  updating_ = false;
  for (QWidget* w : {static_cast<QWidget*>(slider_), static_cast<QWidget*>(strength_box_),
                     static_cast<QWidget*>(remove_button_)})
    w->setEnabled(item != nullptr);
}

void LoraList::set_strength(double s) {
  QListWidgetItem* item = list_->currentItem();
  if (!item) return;
  updating_ = true;
  item->setData(kStrengthRole, s);
  label(item);
  strength_box_->setValue(s);
  slider_->setValue(int(std::lround(std::clamp(s, -kSliderRange, kSliderRange) * kSliderSteps)));
  updating_ = false;
  Q_EMIT changed();
}

}  // namespace framesmith::ui
