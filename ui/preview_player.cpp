#include "preview_player.h"

#include <QDesktopServices>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPainter>
#include <QSlider>
#include <QStyle>
#include <QToolButton>
#include <QUrl>
#include <QVBoxLayout>

namespace framesmith::ui {
namespace {
constexpr int kFps = 30;  // as the MP4
}

FrameView::FrameView(QWidget* parent) : QWidget(parent) {
  setMinimumSize(240, 160);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setAttribute(Qt::WA_OpaquePaintEvent);
}

void FrameView::set_frame(const QImage& frame) {
  frame_ = frame;
  update();
}

void FrameView::set_inset(const QImage& inset, const QString& caption) {
  inset_ = inset;
  caption_ = caption;
  update();
}

void FrameView::set_placeholder(const QString& text) {
  placeholder_ = text;
  update();
}

void FrameView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), QColor(28, 28, 30));
  p.setRenderHint(QPainter::SmoothPixmapTransform);
  auto fit = [](const QSize& image, const QRect& box) {
    const QSize s = image.scaled(box.size(), Qt::KeepAspectRatio);
    return QRect(box.center().x() - s.width() / 2 + 1, box.center().y() - s.height() / 2 + 1,
                 s.width(), s.height());
  };
  const QRect area = rect().adjusted(4, 4, -4, -4);
  const bool has_frame = !frame_.isNull();
  if (has_frame) p.drawImage(fit(frame_.size(), area), frame_);
  if (!inset_.isNull()) {
    // Alone, the latent preview fills the view; with video it sits in the top-left corner.
    const QRect box = has_frame ? QRect(area.topLeft() + QPoint(6, 6), area.size() / 3) : area;
    const QRect target = fit(inset_.size(), box.adjusted(0, 0, 0, -p.fontMetrics().height()));
    p.drawImage(target, inset_);
    p.setPen(QColor(255, 255, 255, 200));
    p.drawRect(target.adjusted(0, 0, -1, -1));
    if (!caption_.isEmpty()) {
      const QRect text_box(target.left(), target.bottom() + 1,
                           p.fontMetrics().horizontalAdvance(caption_) + 8,
                           p.fontMetrics().height() + 2);
      p.fillRect(text_box, QColor(0, 0, 0, 150));
      p.drawText(text_box, Qt::AlignCenter, caption_);
    }
  }
  if (!has_frame && inset_.isNull()) {
    p.setPen(QColor(170, 170, 170));
    p.drawText(area, Qt::AlignCenter | Qt::TextWordWrap, placeholder_);
  }
}

PreviewPlayer::PreviewPlayer(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(0, 0, 0, 0);
  v->setSpacing(3);
  view_ = new FrameView;
  v->addWidget(view_, 1);
  auto* controls = new QHBoxLayout;
  play_button_ = new QToolButton;
  play_button_->setIcon(style()->standardIcon(QStyle::SP_MediaPlay));
  play_button_->setToolTip("Play / pause (Space)");
  play_button_->setShortcut(Qt::Key_Space);
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setToolTip("Scrub through the frames");
  position_label_ = new QLabel;
  position_label_->setMinimumWidth(
      position_label_->fontMetrics().horizontalAdvance("0000 / 0000 · 000.00 s"));
  folder_button_ = new QToolButton;
  folder_button_->setText("Open folder");
  folder_button_->setToolTip("Show the video in the file manager");
  controls->addWidget(play_button_);
  controls->addWidget(slider_, 1);
  controls->addWidget(position_label_);
  controls->addWidget(folder_button_);
  v->addLayout(controls);

  timer_.setInterval(1000 / kFps);
  connect(&timer_, &QTimer::timeout, this, &PreviewPlayer::advance);
  connect(play_button_, &QToolButton::clicked, this, &PreviewPlayer::toggle_play);
  connect(slider_, &QSlider::valueChanged, this, [this](int v) {
    if (v != index_) seek(v);
  });
  // Scrubbing pauses, as in every player.
  connect(slider_, &QSlider::sliderPressed, this, &PreviewPlayer::pause);
  connect(folder_button_, &QToolButton::clicked, this, &PreviewPlayer::open_folder);
  clear("The preview of each step and the video as it grows appear here.");
}

void PreviewPlayer::clear(const QString& placeholder) {
  timer_.stop();
  frames_.clear();
  first_frame_ = tail_first_ = tail_count_ = 0;
  index_ = 0;
  view_->set_frame({});
  view_->set_inset({}, {});
  if (!placeholder.isEmpty()) view_->set_placeholder(placeholder);
  update_controls();
}

void PreviewPlayer::show_latent_preview(const QImage& image, const QString& caption) {
  view_->set_inset(image, caption);
}

void PreviewPlayer::end_previews() {
  view_->set_inset({}, {});
}

void PreviewPlayer::set_frames(const QList<QImage>& frames) {
  frames_ = frames;
  first_frame_ = tail_first_ = tail_count_ = 0;
  index_ = frames_.isEmpty() ? 0 : std::min(index_, int(frames_.size()) - 1);
  show_current();
  update_controls();
  if (!frames_.isEmpty() && !timer_.isActive()) play();
}

void PreviewPlayer::add_chunk(const QList<QImage>& finals, qint64 first_final,
                              const QList<QImage>& tail, qint64 first_tail) {
  remove_frames(tail_first_, tail_count_);
  place_frames(finals, first_final);
  place_frames(tail, first_tail);
  tail_first_ = first_tail;
  tail_count_ = tail.size();
  index_ = frames_.isEmpty() ? 0 : std::min(index_, int(frames_.size()) - 1);
  show_current();
  update_controls();
  if (!frames_.isEmpty() && !timer_.isActive()) play();
}

// The old tail sits at one end of the frames held: the front or the back.
void PreviewPlayer::remove_frames(qint64 first, qint64 count) {
  if (count <= 0 || frames_.isEmpty()) return;
  const qint64 at = first - first_frame_;
  if (at < 0 || at + count > frames_.size()) return;
  frames_.remove(at, count);
  if (at == 0) first_frame_ += count;
}

// New frames join the held ones at whichever end they touch.
void PreviewPlayer::place_frames(const QList<QImage>& frames, qint64 first) {
  if (frames.isEmpty()) return;
  if (frames_.isEmpty()) {
    frames_ = frames;
    first_frame_ = first;
  } else if (first + frames.size() == first_frame_) {
    frames_ = frames + frames_;
    first_frame_ = first;
  } else {
    frames_.append(frames);
  }
}

void PreviewPlayer::set_video_path(const QString& path) {
  video_path_ = path;
  update_controls();
}

void PreviewPlayer::play() {
  if (frames_.size() < 2) return;
  timer_.start();
  play_button_->setIcon(style()->standardIcon(QStyle::SP_MediaPause));
}

void PreviewPlayer::pause() {
  timer_.stop();
  play_button_->setIcon(style()->standardIcon(QStyle::SP_MediaPlay));
}

void PreviewPlayer::toggle_play() {
  if (timer_.isActive())
    pause();
  else
    play();
}

void PreviewPlayer::seek(int frame) {
  if (frames_.isEmpty()) return;
  index_ = std::clamp(frame, 0, int(frames_.size()) - 1);
  show_current();
  update_controls();
}

void PreviewPlayer::advance() {
  if (frames_.isEmpty()) return;
  index_ = (index_ + 1) % int(frames_.size());
  show_current();
  update_controls();
}

void PreviewPlayer::show_current() {
  if (!frames_.isEmpty()) view_->set_frame(frames_[index_]);
}

void PreviewPlayer::update_controls() {
  const int n = int(frames_.size());
  {
    const QSignalBlocker block(slider_);
    slider_->setRange(0, std::max(n - 1, 0));
    slider_->setValue(index_);
  }
  slider_->setEnabled(n > 1);
  play_button_->setEnabled(n > 1);
  position_label_->setText(
      n ? QString("%1 / %2 · %3 s").arg(index_ + 1).arg(n).arg(double(index_) / kFps, 0, 'f', 2)
        : QString());
  folder_button_->setEnabled(!video_path_.isEmpty());
}

void PreviewPlayer::open_folder() {
  if (video_path_.isEmpty()) return;
  QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(video_path_).absolutePath()));
}

}  // namespace framesmith::ui
