#include "image_input.h"

#include <QApplication>
#include <QClipboard>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeyEvent>
#include <QMimeData>
#include <QPainter>
#include <QPainterPath>
#include <cmath>
#include <cstring>

#include "image_io.h"

namespace framesmith::ui {
namespace {
constexpr int kMaxSide = 16384;     // as app::load_image_rgb and the engine refuse larger ones
constexpr int kDisplaySide = 1024;  // what is kept for painting
}  // namespace

ImageInput::ImageInput(QWidget* parent) : QFrame(parent) {
  setFrameShape(QFrame::StyledPanel);
  setAcceptDrops(true);
  setFocusPolicy(Qt::StrongFocus);
  setMinimumSize(200, 150);
  setToolTip("Start image: drop a file, paste (Ctrl+V) or double-click to open one");
}

bool ImageInput::reject(const QString& message) {
  error_ = message;
  update();
  Q_EMIT rejected(message);
  return false;
}

void ImageInput::accept(Frames frames, const QString& source) {
  frames_ = std::move(frames);
  source_ = source;
  error_.clear();
  const QImage view(frames_.rgb.data(), frames_.width, frames_.height, frames_.width * 3,
                    QImage::Format_RGB888);
  display_ =
      std::max(frames_.width, frames_.height) > kDisplaySide
          ? view.scaled(kDisplaySide, kDisplaySide, Qt::KeepAspectRatio, Qt::SmoothTransformation)
          : view.copy();
  update_bucket();
  update();
  Q_EMIT image_changed();
}

bool ImageInput::load_file(const QString& path) {
  try {
    accept(app::load_image_rgb(path.toStdString()), QFileInfo(path).absoluteFilePath());
  } catch (const std::exception& e) {
    return reject(QString::fromStdString(e.what()));
  }
  return true;
}

bool ImageInput::set_image(const QImage& image, const QString& source) {
  if (image.isNull() || image.width() < 1 || image.height() < 1)
    return reject(source + ": no picture in it");
  if (image.width() > kMaxSide || image.height() > kMaxSide)
    return reject(QString("%1: image is %2x%3 pixels; the largest accepted side is %4")
                      .arg(source)
                      .arg(image.width())
                      .arg(image.height())
                      .arg(kMaxSide));
  accept(app::frames_from_qimage(image), source);
  return true;
}

bool ImageInput::paste_from_clipboard() {
  const QMimeData* mime = QApplication::clipboard()->mimeData();
  if (mime && mime->hasImage())
    return set_image(qvariant_cast<QImage>(mime->imageData()), "clipboard");
  if (mime && mime->hasUrls() && !mime->urls().isEmpty() && mime->urls().first().isLocalFile())
    return load_file(mime->urls().first().toLocalFile());
  return reject("the clipboard holds no image");
}

void ImageInput::open_dialog() {
  const QString start = QFileInfo(source_).exists() ? QFileInfo(source_).absolutePath() : QString();
  const QString f = QFileDialog::getOpenFileName(
      this, "Start image", start, "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff)");
  if (!f.isEmpty()) load_file(f);
}

void ImageInput::set_resolution(int resolution) {
  resolution_ = resolution;
  update_bucket();
  update();
}

void ImageInput::set_target_bucket(BucketSize bucket) {
  target_bucket_ = bucket;
  update_bucket();
  update();
}

void ImageInput::clear() {
  frames_ = Frames{};
  display_ = QImage();
  source_.clear();
  error_.clear();
  bucket_ = {};
  update();
  Q_EMIT image_changed();
}

void ImageInput::update_bucket() {
  bucket_ = {};
  if (!has_image()) return;
  if (target_bucket_.width > 0) {
    bucket_ = target_bucket_;
    return;
  }
  try {
    bucket_ = start_image_bucket(frames_.width, frames_.height, resolution_);
  } catch (const std::exception&) {
    // Resolution outside the engine's range: no bucket to show; Start will say why.
  }
}

QString ImageInput::caption() const {
  if (!has_image()) return {};
  QString text = QString("%1 × %2").arg(frames_.width).arg(frames_.height);
  if (bucket_.width > 0)
    text += QString(" → cropped to %1 × %2").arg(bucket_.width).arg(bucket_.height);
  return text;
}

void ImageInput::paintEvent(QPaintEvent* e) {
  QFrame::paintEvent(e);
  QPainter p(this);
  p.setRenderHint(QPainter::SmoothPixmapTransform);
  const QRect area = contentsRect().adjusted(6, 6, -6, -6 - fontMetrics().height() - 4);
  const QRect text_area(area.left(), area.bottom() + 2, area.width(), fontMetrics().height() + 2);
  if (!has_image()) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(area, Qt::AlignCenter | Qt::TextWordWrap,
               "Drop an image here,\npaste it (Ctrl+V)\nor double-click to open one");
  } else {
    const QSize fit = display_.size().scaled(area.size(), Qt::KeepAspectRatio);
    const QRect target(area.center().x() - fit.width() / 2, area.center().y() - fit.height() / 2,
                       fit.width(), fit.height());
    p.drawImage(target, display_);
    if (bucket_.width > 0) {
      // The crop box FramePack's resize_and_center_crop keeps, in widget coordinates.
      const double s =
          std::max(double(bucket_.width) / frames_.width, double(bucket_.height) / frames_.height);
      const double kw = bucket_.width / s / frames_.width * target.width();
      const double kh = bucket_.height / s / frames_.height * target.height();
      const QRectF keep(target.center().x() - kw / 2 + 0.5, target.center().y() - kh / 2 + 0.5, kw,
                        kh);
      QPainterPath outside;
      outside.addRect(target);
      QPainterPath inside;
      inside.addRect(keep);
      p.fillPath(outside.subtracted(inside), QColor(0, 0, 0, 130));
      p.setPen(QPen(QColor(255, 255, 255, 220), 1, Qt::DashLine));
      p.drawRect(keep);
    }
  }
  if (!error_.isEmpty()) {
    p.setPen(QColor(200, 30, 30));
    p.drawText(text_area, Qt::AlignLeft | Qt::AlignVCenter,
               fontMetrics().elidedText(error_, Qt::ElideMiddle, text_area.width()));
  } else if (has_image()) {
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(text_area, Qt::AlignHCenter | Qt::AlignVCenter, caption());
  }
}

void ImageInput::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls() || e->mimeData()->hasImage()) e->acceptProposedAction();
}

void ImageInput::dropEvent(QDropEvent* e) {
  const QMimeData* mime = e->mimeData();
  if (mime->hasUrls() && !mime->urls().isEmpty() && mime->urls().first().isLocalFile())
    load_file(mime->urls().first().toLocalFile());
  else if (mime->hasImage())
    set_image(qvariant_cast<QImage>(mime->imageData()), "dropped image");
  e->acceptProposedAction();
}

void ImageInput::mouseDoubleClickEvent(QMouseEvent*) {
  open_dialog();
}

void ImageInput::keyPressEvent(QKeyEvent* e) {
  if (e->matches(QKeySequence::Paste)) {
    paste_from_clipboard();
    return;
  }
  if (e->matches(QKeySequence::Open)) {
    open_dialog();
    return;
  }
  QFrame::keyPressEvent(e);
}

}  // namespace framesmith::ui
