// The preview area: the per-step latent preview while a section samples, the video so far as soon
// as each section is decoded (it plays at once and grows), and the finished video with a frame
// slider. "Open folder" shows the MP4 in the file manager.
#pragma once
#include <QImage>
#include <QList>
#include <QTimer>
#include <QWidget>

class QLabel;
class QSlider;
class QToolButton;

namespace framesmith::ui {

// Paints one frame scaled to fit, with an optional inset (the latent preview) in a corner.
class FrameView : public QWidget {
 public:
  explicit FrameView(QWidget* parent = nullptr);
  void set_frame(const QImage& frame);
  void set_inset(const QImage& inset, const QString& caption);
  void set_placeholder(const QString& text);
  const QImage& frame() const { return frame_; }

 protected:
  void paintEvent(QPaintEvent* e) override;

 private:
  QImage frame_;
  QImage inset_;
  QString caption_;
  QString placeholder_;
};

class PreviewPlayer : public QWidget {
  Q_OBJECT
 public:
  explicit PreviewPlayer(QWidget* parent = nullptr);

  void clear(const QString& placeholder = {});
  // The latent preview of the step that just finished (shown large until video exists).
  void show_latent_preview(const QImage& image, const QString& caption);
  // The finished video (or any whole video). Playback keeps its position.
  void set_frames(const QList<QImage>& frames);
  // One section's chunk of the video being made: the frames that just became final and the
  // tail that replaces the previous one, each placed by its first frame's index (the original
  // variant's chunks extend the video at the front, F1's at the back). Playback keeps its
  // position and starts with the first frames.
  void add_chunk(const QList<QImage>& finals, qint64 first_final, const QList<QImage>& tail,
                 qint64 first_tail);
  // Sampling is over: the latent inset goes away.
  void end_previews();
  void set_video_path(const QString& path);

  int frame_count() const { return int(frames_.size()); }
  int current_frame() const { return index_; }
  bool playing() const { return timer_.isActive(); }
  QString video_path() const { return video_path_; }
  FrameView* view() const { return view_; }

 public Q_SLOTS:
  void play();
  void pause();
  void toggle_play();
  void seek(int frame);
  void open_folder();

 private:
  void show_current();
  void advance();
  void update_controls();
  void remove_frames(qint64 first, qint64 count);
  void place_frames(const QList<QImage>& frames, qint64 first);

  FrameView* view_ = nullptr;
  QToolButton* play_button_ = nullptr;
  QSlider* slider_ = nullptr;
  QLabel* position_label_ = nullptr;
  QToolButton* folder_button_ = nullptr;
  QList<QImage> frames_;
  qint64 first_frame_ = 0;  // the video index of frames_[0] (chunks of a video being made)
  qint64 tail_first_ = 0;   // where the current tail is in frames_, by video index
  qint64 tail_count_ = 0;
  int index_ = 0;
  QTimer timer_;
  QString video_path_;
};

}  // namespace framesmith::ui
