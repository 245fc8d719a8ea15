// The start image: opened with a dialog (double-click, Ctrl+O), dropped, or pasted (Ctrl+V while
// it has focus, or Edit > Paste image). Shows the picture with the part FramePack will crop away
// dimmed and the bucket it is cropped to; refuses unreadable or absurd files with a message.
#pragma once
#include <QFrame>
#include <QImage>

#include "framesmith/image_bucket.h"
#include "framesmith/pipeline.h"

namespace framesmith::ui {

class ImageInput : public QFrame {
  Q_OBJECT
 public:
  explicit ImageInput(QWidget* parent = nullptr);

  // False when the file is refused; the reason is in error() and on the widget.
  bool load_file(const QString& path);
  // An image from the clipboard or a drop; `source` says where it came from.
  bool set_image(const QImage& image, const QString& source);
  bool paste_from_clipboard();
  // Opens the file dialog (the folder of the current image first).
  void open_dialog();
  void set_resolution(int resolution);
  // The crop box shown is `bucket`'s instead of this picture's own (the end image takes the start
  // image's bucket); an empty bucket goes back to the picture's own.
  void set_target_bucket(BucketSize bucket);
  // No picture any more (image_changed is emitted).
  void clear();

  bool has_image() const { return frames_.count == 1; }
  const Frames& frames() const { return frames_; }
  QString source() const { return source_; }  // file path, or "clipboard"
  QString error() const { return error_; }
  BucketSize bucket() const { return bucket_; }
  QString caption() const;  // "1024 × 768 → cropped to 608 × 640"

 Q_SIGNALS:
  void image_changed();
  void rejected(const QString& message);

 protected:
  void paintEvent(QPaintEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void mouseDoubleClickEvent(QMouseEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;

 private:
  bool reject(const QString& message);
  void accept(Frames frames, const QString& source);
  void update_bucket();

  Frames frames_;
  QImage display_;  // a screen-sized copy for painting
  QString source_;
  QString error_;
  int resolution_ = 640;
  BucketSize bucket_;
  BucketSize target_bucket_;  // width 0: none
};

}  // namespace framesmith::ui
