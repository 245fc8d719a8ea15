#include "png_export.h"

#include <QDir>
#include <QImage>
#include <QSaveFile>
#include <algorithm>

#include "framesmith/error.h"

namespace framesmith::app {

void write_png(const std::uint8_t* rgb24, int width, int height, int stride,
               const std::string& path) {
  if (!rgb24 || width < 1 || height < 1 || stride < width * 3)
    throw Error(path + ": bad image for PNG export (" + std::to_string(width) + "x" +
                std::to_string(height) + ", stride " + std::to_string(stride) + ")");
  // A view of the caller's pixels: QImage copies nothing until it is changed.
  const QImage view(rgb24, width, height, stride, QImage::Format_RGB888);
  QSaveFile file(QString::fromStdString(path));
  if (!file.open(QIODevice::WriteOnly))
    throw Error(path + ": cannot create the PNG (" + file.errorString().toStdString() + ")");
  if (!view.save(&file, "PNG"))
    throw Error(path + ": cannot encode the PNG (" + file.errorString().toStdString() + ")");
  if (!file.commit())
    throw Error(path + ": cannot write the PNG (" + file.errorString().toStdString() + ")");
}

void export_png(const Frames& frames, int index, const std::string& path) {
  if (index < 0 || index >= frames.count)
    throw Error(path + ": no frame " + std::to_string(index) + " to export (" +
                std::to_string(frames.count) + " frames)");
  write_png(frames.frame(index), frames.width, frames.height, frames.width * 3, path);
}

std::vector<std::string> export_pngs(const Frames& frames, const std::string& folder,
                                     const std::string& stem) {
  const QString dir = QString::fromStdString(folder);
  if (!QDir().mkpath(dir)) throw Error(folder + ": cannot create the folder for PNG frames");
  const int digits = std::max(5, int(std::to_string(std::max(frames.count - 1, 0)).size()));
  std::vector<std::string> paths;
  paths.reserve(frames.count);
  for (int i = 0; i < frames.count; ++i) {
    const QString name =
        QString("%1_%2.png").arg(QString::fromStdString(stem)).arg(i, digits, 10, QLatin1Char('0'));
    paths.push_back(QDir(dir).filePath(name).toStdString());
    export_png(frames, i, paths.back());
  }
  return paths;
}

}  // namespace framesmith::app
