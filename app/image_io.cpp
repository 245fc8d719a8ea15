#include "image_io.h"

#include <QBuffer>
#include <QImage>
#include <QImageReader>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "framesmith/error.h"
#include "framesmith/utf8.h"

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

namespace {

// The file's bytes, read through the byte path as given: a path that is not valid UTF-8 would be
// mangled by QString (and reported as "File not found").
QByteArray read_file_bytes(const std::string& path, const std::string& shown) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(shown + ": cannot open the image (" + std::strerror(errno) + ")");
  const std::streamoff size = in.tellg();
  constexpr std::streamoff kMaxBytes = std::streamoff(1) << 30;
  if (size > kMaxBytes) throw Error(shown + ": the image file is larger than 1 GiB");
  QByteArray bytes(static_cast<qsizetype>(size), Qt::Uninitialized);
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size))
    throw Error(shown + ": cannot read the image file");
  return bytes;
}

// A JPEG cut short decodes "successfully" with the missing part grey (libjpeg only warns), so a
// JPEG must hold its end-of-image marker (FF D9); other bytes may follow it (some cameras append).
bool jpeg_is_whole(const QByteArray& bytes) {
  return bytes.lastIndexOf(QByteArray("\xFF\xD9", 2)) >= 2;
}

}  // namespace

Frames load_image_rgb(const std::string& path) {
  const std::string shown = escape_invalid_utf8(path);
  QByteArray bytes = read_file_bytes(path, shown);
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::ReadOnly);
  QImageReader reader(&buffer);
  // Qt refuses to allocate more than 256 MiB per image by default, which made a valid
  // 5800 x 5800 PNG "Unable to read image data"; the stated limit is kMaxSide per side, as
  // 32-bit pixels.
  reader.setAllocationLimit(int((std::int64_t(kMaxSide) * kMaxSide * 4 >> 20) + 64));
  const QSize size = reader.size();
  if (size.isValid() && (size.width() > kMaxSide || size.height() > kMaxSide))
    throw Error(shown + ": image is " + std::to_string(size.width()) + "x" +
                std::to_string(size.height()) + " pixels; the largest accepted side is " +
                std::to_string(kMaxSide));
  const QByteArray format = reader.format().toLower();
  if ((format == "jpeg" || format == "jpg") && !jpeg_is_whole(bytes))
    throw Error(shown + ": the JPEG file is cut short (no end-of-image marker), so part of the "
                        "picture is missing; use a complete copy");
  QImage img = reader.read();
  if (img.isNull())
    throw Error(shown + ": cannot read image (" + reader.errorString().toStdString() + ")");
  return frames_from_qimage(img);
}

}  // namespace framesmith::app
