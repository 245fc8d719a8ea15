#include "model_picker.h"

#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>
#include <memory>

namespace framesmith::ui {

ModelPicker::ModelPicker(QWidget* parent)
    : QWidget(parent), tiny_dir_(app::default_tiny_model_dir()) {
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(0, 0, 0, 0);
  v->setSpacing(2);
  auto* row = new QHBoxLayout;
  row->setSpacing(3);
  path_edit_ = new QLineEdit;
  path_edit_->setPlaceholderText("model folder, or hf for the Hugging Face cache");
  path_edit_->setToolTip(
      "A diffusers-layout folder (transformer/, vae/, text_encoder/, ...) or "
      "\"hf\" for the FramePack repositories in the Hugging Face cache");
  auto* browse = new QToolButton;
  browse->setText("Folder…");
  browse->setToolTip("Choose a model folder");
  auto* hf = new QToolButton;
  hf->setText("HF");
  hf->setToolTip("Use the Hugging Face cache (" + QString::fromStdString(default_hub_cache()) +
                 ")");
  auto* tiny = new QToolButton;
  tiny->setText("Tiny");
  tiny->setToolTip("The tiny random model: runs in a minute on a CPU, makes noise");
  row->addWidget(new QLabel("Model"));
  row->addWidget(path_edit_, 1);
  row->addWidget(browse);
  row->addWidget(hf);
  row->addWidget(tiny);
  // Shown while there is no real model (the tiny one, or a set with parts missing).
  download_ = new QToolButton;
  download_->setObjectName("download_models");
  download_->setText("Download…");
  download_->setToolTip("Fetch FramePack's files (about 40 GB) from the Hugging Face hub");
  v->addLayout(row);
  status_label_ = new QLabel;
  status_label_->setWordWrap(true);
  QFont small = status_label_->font();
  small.setPointSizeF(small.pointSizeF() * 0.92);
  status_label_->setFont(small);
  // The status line, with the download offer beside it (the path field keeps its width).
  auto* status_row = new QHBoxLayout;
  status_row->addWidget(status_label_, 1);
  status_row->addWidget(download_, 0, Qt::AlignTop);
  v->addLayout(status_row);

  connect(path_edit_, &QLineEdit::editingFinished, this, &ModelPicker::refresh);
  connect(browse, &QToolButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Model folder", location());
    if (!d.isEmpty()) set_location(d);
  });
  connect(hf, &QToolButton::clicked, this, [this] { set_location("hf"); });
  connect(tiny, &QToolButton::clicked, this, &ModelPicker::use_tiny_model);
  connect(download_, &QToolButton::clicked, this, &ModelPicker::download_requested);
}

QString ModelPicker::location() const {
  return path_edit_->text().trimmed();
}

void ModelPicker::set_location(const QString& where) {
  path_edit_->setText(where);
  refresh();
}

void ModelPicker::set_variant(TransformerVariant variant) {
  if (variant == variant_) return;
  variant_ = variant;
  checked_.clear();
  refresh();
}

bool ModelPicker::is_tiny() const {
  return app::is_tiny_model(location());
}

void ModelPicker::refresh() {
  const QString where = location();
  if (where == checked_) return;
  checked_ = where;
  status_ = app::check_model_set(where, variant_);
  QString text = status_.summary;
  if (status_.usable && is_tiny()) text += " · tiny random model (its videos are noise)";
  status_label_->setText(text);
  status_label_->setStyleSheet(status_.usable ? "color: #2a7a2a;" : "color: #b03020;");
  download_->setVisible(!status_.usable || is_tiny());
  status_label_->setToolTip(
      (status_.found.isEmpty() ? QString() : "found:\n  " + status_.found.join("\n  ")) +
      (status_.missing.isEmpty() ? QString() : "\nmissing:\n  " + status_.missing.join("\n  ")));
  Q_EMIT location_changed(where);
}

void ModelPicker::use_tiny_model() {
  if (busy_) return;
  if (app::is_tiny_model(tiny_dir_) && QFileInfo::exists(tiny_dir_ + "/transformer/config.json")) {
    set_location(tiny_dir_);
    return;
  }
  busy_ = true;
  status_label_->setText("writing the tiny model to " + tiny_dir_ + " …");
  status_label_->setStyleSheet(QString());
  auto error = std::make_shared<QString>();
  const QString dir = tiny_dir_;
  QThread* thread = QThread::create([dir, error] {
    try {
      app::ensure_tiny_model(dir);
    } catch (const std::exception& e) {
      *error = QString::fromStdString(e.what());
    }
  });
  QPointer<ModelPicker> self(this);
  connect(thread, &QThread::finished, this, [self, thread, error, dir] {
    thread->deleteLater();
    if (!self) return;
    self->busy_ = false;
    self->checked_.clear();  // the folder may be the one shown before, now complete
    if (!error->isEmpty()) {
      Q_EMIT self->message("could not write the tiny model: " + *error, true);
      self->refresh();
      return;
    }
    self->set_location(dir);
  });
  thread->start();
}

}  // namespace framesmith::ui
