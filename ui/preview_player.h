// The preview area: the per-step latent preview while a section samples, the video so far as soon
// as each section is decoded (it plays at once and grows), and the finished video with a frame
// slider. "Open folder" shows the MP4 in the file manager.
//
// A video being made is held in constant memory whatever its length: a section's final frames
// are played from the segment file the job just wrote for them (decoded again when played; the
// newest frames stay in a small cache), and only the tail the next section still changes is kept
// whole in memory.
#pragma once
#include <QImage>
#include <QList>
#include <QTimer>
#include <QWidget>
#include <deque>
#include <map>
#include <memory>

class QLabel;
class QSlider;
class QToolButton;

namespace framesmith::app {
class VideoReader;
}

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
  // A video on disk, played from its files without decoding it whole: `files` are the video's
  // parts in order with the index of each one's first frame (one file starting at 0, or a job's
  // segments), `total_frames` the video's length. Frames are shown at most kMaxSide pixels.
  void set_video_files(const QList<QPair<qint64, QString>>& files, qint64 total_frames);
  static constexpr int kMaxSide = 640;
  // One section's chunk of the video being made: the frames that just became final and the
  // tail that replaces the previous one, each placed by its first frame's index (the original
  // variant's chunks extend the video at the front, F1's at the back). `final_segment`: the
  // file holding the final frames (then they are played from it, and only the newest stay in
  // memory); empty: they are kept in memory. Playback keeps its position and starts with the
  // first frames.
  void add_chunk(const QList<QImage>& finals, qint64 first_final, const QString& final_segment,
                 const QList<QImage>& tail, qint64 first_tail);
  // Sampling is over: the latent inset goes away.
  void end_previews();
  void set_video_path(const QString& path);

  ~PreviewPlayer() override;
  int frame_count() const { return int(end_ - begin_); }
  // Frames held in memory now (cache, tail and frames without a file), for the memory tests.
  int held_frames() const;
  // At most this many frames played from segment files are kept decoded.
  static constexpr int kCachedFrames = 48;
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
  // A run of frames of the video: in a segment file (`path`), or in memory (`frames`).
  struct Piece {
    qint64 count = 0;
    QString path;
    QList<QImage> frames;
  };
  void place(qint64 first, Piece piece);
  QImage frame_at(qint64 index);
  QImage decode(const Piece& piece, qint64 first, qint64 index);
  void cache(qint64 index, const QImage& image);
  void reset_frames();
  void update_extent();

  FrameView* view_ = nullptr;
  QToolButton* play_button_ = nullptr;
  QSlider* slider_ = nullptr;
  QLabel* position_label_ = nullptr;
  QToolButton* folder_button_ = nullptr;
  std::map<qint64, Piece> pieces_;            // by the video index of their first frame
  qint64 begin_ = 0, end_ = 0;                // the video indices held: [begin_, end_)
  qint64 tail_first_ = -1;                    // the current tail's piece (-1: none)
  std::map<qint64, QImage> cache_;            // frames decoded from segment files, or just received
  std::deque<qint64> cache_order_;            // oldest first
  std::unique_ptr<app::VideoReader> reader_;  // the segment file being played
  QString reader_path_;
  QSize frame_size_;  // what frames are shown at (decoded ones are scaled to the received size)
  int index_ = 0;
  QTimer timer_;
  QString video_path_;
};

}  // namespace framesmith::ui
