// The job's LoRAs: files added from disk or from the LoRA folder, each with an enable check and a
// strength (slider and number), applied in the list's order (drag to reorder).
#pragma once
#include <QWidget>
#include <vector>

#include "framesmith/pipeline.h"

class QDoubleSpinBox;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class QSlider;
class QToolButton;

namespace framesmith::ui {

class LoraList : public QWidget {
  Q_OBJECT
 public:
  // `folder`: the LoRA folder that "From folder" lists (framesmith/lora_files.h's default).
  explicit LoraList(QString folder, QWidget* parent = nullptr);

  // The enabled LoRAs, in order.
  std::vector<LoraSpec> loras() const;
  // Replaces the list with `loras`, all enabled (a job re-used from the history).
  void set_loras(const std::vector<LoraSpec>& loras);
  // Adds one, enabled, at the end; selects it.
  void add(const QString& path, double strength = 1.0);
  int count() const;
  // A short line for the collapsed section: "2 LoRAs: style 0.80, detail -0.30" or "none".
  QString summary() const;
  const QString& folder() const { return folder_; }

 Q_SIGNALS:
  void changed();

 private:
  void add_files();
  void fill_folder_menu();
  void remove_selected();
  void show_selected();
  void set_strength(double s);
  static void label(QListWidgetItem* item);

  QString folder_;
  QListWidget* list_ = nullptr;
  QSlider* slider_ = nullptr;
  QDoubleSpinBox* strength_box_ = nullptr;
  QPushButton* remove_button_ = nullptr;
  QToolButton* folder_button_ = nullptr;
  bool updating_ = false;
};

}  // namespace framesmith::ui
