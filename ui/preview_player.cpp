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
#include <algorithm>

#include "video_reader.h"

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

PreviewPlayer::~PreviewPlayer() = default;

void PreviewPlayer::reset_frames() {
  pieces_.clear();
  begin_ = end_ = 0;
  tail_first_ = -1;
  cache_.clear();
  cache_order_.clear();
  reader_.reset();
  reader_path_.clear();
  frame_size_ = QSize();
}

void PreviewPlayer::clear(const QString& placeholder) {
  timer_.stop();
  reset_frames();
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
  reset_frames();
  if (!frames.isEmpty()) place(0, Piece{frames.size(), QString(), frames});
  update_extent();
  show_current();
  update_controls();
  if (frame_count() > 1 && !timer_.isActive()) play();
}

void PreviewPlayer::set_video_files(const QList<QPair<qint64, QString>>& files,
                                    qint64 total_frames) {
  reset_frames();
  for (int i = 0; i < files.size(); ++i) {
    const qint64 end = i + 1 < files.size() ? files[i + 1].first : total_frames;
    if (end > files[i].first)
      place(files[i].first, Piece{end - files[i].first, files[i].second, {}});
  }
  update_extent();
  show_current();
  update_controls();
  if (frame_count() > 1 && !timer_.isActive()) play();
}

void PreviewPlayer::add_chunk(const QList<QImage>& finals, qint64 first_final,
                              const QString& final_segment, const QList<QImage>& tail,
                              qint64 first_tail) {
  if (tail_first_ >= 0) pieces_.erase(tail_first_);
  tail_first_ = -1;
  if (!finals.isEmpty()) {
    if (final_segment.isEmpty()) {
      place(first_final, Piece{finals.size(), QString(), finals});
    } else {
      // Played from the file from now on; the frames just received are its first cache.
      place(first_final, Piece{finals.size(), final_segment, {}});
      for (int i = 0; i < finals.size(); ++i) cache(first_final + i, finals[i]);
    }
  }
  if (!tail.isEmpty()) {
    place(first_tail, Piece{tail.size(), QString(), tail});
    tail_first_ = first_tail;
  }
  update_extent();
  show_current();
  update_controls();
  if (frame_count() > 1 && !timer_.isActive()) play();
}

// What is held is contiguous: from the first piece to the end of the last.
void PreviewPlayer::update_extent() {
  begin_ = pieces_.empty() ? 0 : pieces_.begin()->first;
  end_ = pieces_.empty() ? 0 : pieces_.rbegin()->first + pieces_.rbegin()->second.count;
  index_ = std::clamp(index_, 0, std::max(frame_count() - 1, 0));
}

void PreviewPlayer::place(qint64 first, Piece piece) {
  if (!piece.frames.isEmpty() && !frame_size_.isValid()) frame_size_ = piece.frames.first().size();
  pieces_[first] = std::move(piece);
}

int PreviewPlayer::held_frames() const {
  int n = int(cache_.size());
  for (const auto& [first, piece] : pieces_) n += int(piece.frames.size());
  return n;
}

void PreviewPlayer::cache(qint64 index, const QImage& image) {
  if (!frame_size_.isValid()) frame_size_ = image.size();
  if (cache_.count(index) == 0) cache_order_.push_back(index);
  cache_[index] = image;
  while (int(cache_order_.size()) > kCachedFrames) {
    cache_.erase(cache_order_.front());
    cache_order_.pop_front();
  }
}

// The frame at video index `index` (begin_ <= index < end_): from memory, the cache, or its
// segment file. A file that cannot be read gives a null image (the previous frame stays shown).
QImage PreviewPlayer::frame_at(qint64 index) {
  auto it = pieces_.upper_bound(index);
  if (it == pieces_.begin()) return {};
  --it;
  const qint64 first = it->first;
  const Piece& piece = it->second;
  if (index >= first + piece.count) return {};
  if (piece.path.isEmpty()) return piece.frames[int(index - first)];
  const auto hit = cache_.find(index);
  if (hit != cache_.end()) return hit->second;
  const QImage image = decode(piece, first, index);
  if (!image.isNull()) cache(index, image);
  return image;
}

// Sequential playback decodes each frame once: the reader stays open on the segment being played
// (VideoReader reads forward; a step back decodes the segment again from its start, one
// section's worth of frames at most).
QImage PreviewPlayer::decode(const Piece& piece, qint64 first, qint64 index) {
  try {
    if (!reader_ || reader_path_ != piece.path) {
      auto reader = std::make_unique<app::VideoReader>();
      reader->open(piece.path.toStdString());
      reader_ = std::move(reader);
      reader_path_ = piece.path;
    }
    const std::vector<std::uint8_t> rgb = reader_->read_frame(int(index - first));
    const QImage view(rgb.data(), reader_->width(), reader_->height(), reader_->width() * 3,
                      QImage::Format_RGB888);
    if (!frame_size_.isValid())  // a video from disk: shown at most kMaxSide, as live frames are
      frame_size_ = std::max(view.width(), view.height()) > kMaxSide
                        ? view.size().scaled(kMaxSide, kMaxSide, Qt::KeepAspectRatio)
                        : view.size();
    if (view.size() != frame_size_)
      return view.scaled(frame_size_, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    return view.copy();
  } catch (const std::exception&) {
    reader_.reset();
    reader_path_.clear();
    return {};
  }
}

void PreviewPlayer::set_video_path(const QString& path) {
  video_path_ = path;
  update_controls();
}

void PreviewPlayer::play() {
  if (frame_count() < 2) return;
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
  if (frame_count() == 0) return;
  index_ = std::clamp(frame, 0, frame_count() - 1);
  show_current();
  update_controls();
}

void PreviewPlayer::advance() {
  if (frame_count() == 0) return;
  index_ = (index_ + 1) % frame_count();
  show_current();
  update_controls();
}

void PreviewPlayer::show_current() {
  if (frame_count() == 0) return;
  const QImage frame = frame_at(begin_ + index_);
  if (!frame.isNull()) view_->set_frame(frame);
}

void PreviewPlayer::update_controls() {
  const int n = frame_count();
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
