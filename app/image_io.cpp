#include "image_io.h"

#include <QImage>
#include <QImageReader>
#include <cstring>

#include "framesmith/error.h"

namespace framesmith::app {

namespace {
constexpr int kMaxSide = 16384;  // larger pictures are refused before decoding, not after
}

Frames frames_from_qimage(const QImage& image) {
  QImage img = image;
  // Transparent pixels become white, as a viewer shows them on a page.
  if (img.hasAlphaChannel()) {
    QImage flat(img.size(), QImage::Format_RGB32);
    flat.fill(Qt::white);
    QImage argb = img.convertToFormat(QImage::Format_ARGB32_Premultiplied);
    for (int y = 0; y < flat.height(); ++y) {
      auto* dst = reinterpret_cast<QRgb*>(flat.scanLine(y));
      const auto* src = reinterpret_cast<const QRgb*>(argb.constScanLine(y));
      for (int x = 0; x < flat.width(); ++x) {
        const int a = qAlpha(src[x]);
        dst[x] =
            qRgb(qRed(src[x]) + (255 - a), qGreen(src[x]) + (255 - a), qBlue(src[x]) + (255 - a));
      }
    }
    img = flat;
  }
  img = img.convertToFormat(QImage::Format_RGB888);
  Frames f;
  f.width = img.width();
  f.height = img.height();
  f.count = 1;
  f.rgb.resize(std::size_t(f.width) * f.height * 3);
  for (int y = 0; y < f.height; ++y)
    std::memcpy(f.rgb.data() + std::size_t(y) * f.width * 3, img.constScanLine(y),
                std::size_t(f.width) * 3);
  return f;
}

Frames load_image_rgb(const std::string& path) {
  QImageReader reader(QString::fromStdString(path));
  const QSize size = reader.size();
  if (size.isValid() && (size.width() > kMaxSide || size.height() > kMaxSide))
    throw Error(path + ": image is " + std::to_string(size.width()) + "x" +
                std::to_string(size.height()) + " pixels; the largest accepted side is " +
                std::to_string(kMaxSide));
  QImage img = reader.read();
  if (img.isNull())
    throw Error(path + ": cannot read image (" + reader.errorString().toStdString() + ")");
  return frames_from_qimage(img);
}

}  // namespace framesmith::app
