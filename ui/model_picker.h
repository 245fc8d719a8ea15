// Which model set to use: a folder, the Hugging Face cache ("hf"), or the built-in tiny random
// model (written into the data folder when first asked for). Says what the chosen set lacks.
#pragma once
#include <QWidget>

#include "framesmith/model_set.h"
#include "model_locations.h"

class QLabel;
class QLineEdit;
class QToolButton;

namespace framesmith::ui {

class ModelPicker : public QWidget {
  Q_OBJECT
 public:
  explicit ModelPicker(QWidget* parent = nullptr);

  QString location() const;
  void set_location(const QString& where);
  void set_variant(TransformerVariant variant);
  const app::ModelStatus& status() const { return status_; }
  bool is_tiny() const;
  // Where the tiny model lives (tests point this at a temporary folder).
  void set_tiny_model_dir(const QString& dir) { tiny_dir_ = dir; }
  QString tiny_model_dir() const { return tiny_dir_; }
  // Selects the tiny model, writing it first (on a background thread) if it is missing.
  void use_tiny_model();
  bool busy() const { return busy_; }

 Q_SIGNALS:
  void location_changed(const QString& where);
  void message(const QString& text, bool error);
  // The Download… button: the window opens its download dialog.
  void download_requested();

 private:
  void refresh();

  QLineEdit* path_edit_ = nullptr;
  QLabel* status_label_ = nullptr;
  QToolButton* download_ = nullptr;
  TransformerVariant variant_ = TransformerVariant::kOriginal;
  app::ModelStatus status_;
  QString tiny_dir_;
  QString checked_;  // the location status_ describes
  bool busy_ = false;
};

}  // namespace framesmith::ui
