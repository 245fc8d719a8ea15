// Shared set-up for the GUI tests: every file the window touches (settings, log, videos, the tiny
// model) in one temporary folder, a small job that finishes in seconds, and a test image.
#pragma once
#include <QImage>
#include <QPainter>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QString>
#include <QTemporaryDir>
#include <QTest>

#include "main_window.h"
#include "model_locations.h"

namespace framesmith::ui::test {

// A 160x120 picture with some structure (gradient and a disc), saved as PNG.
inline QString write_test_image(const QString& path, QSize size = QSize(160, 120)) {
  QImage img(size, QImage::Format_RGB888);
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x)
      img.setPixelColor(x, y, QColor(x * 255 / img.width(), y * 255 / img.height(), 128));
  QPainter p(&img);
  p.setBrush(QColor(250, 220, 40));
  p.drawEllipse(QPoint(img.width() / 2, img.height() / 2), img.height() / 4, img.height() / 4);
  p.end();
  img.save(path);
  return path;
}

// Settings, log, output and tiny model all under `dir`.
inline StartOptions isolated_options(const QTemporaryDir& dir) {
  StartOptions o;
  o.settings_file = dir.filePath("settings.ini");
  o.log_file = dir.filePath("logs/framesmith.log");
  o.output_dir = dir.filePath("out");
  o.tiny_model_dir = dir.filePath("tiny-model");
  return o;
}

// The tiny model in `dir` (written on first use) and a job small enough for a unit test: 64 px,
// 1 s, 2 steps, window 3 (two sections of a few frames each).
inline StartOptions small_job_options(const QTemporaryDir& dir) {
  StartOptions o = isolated_options(dir);
  app::ensure_tiny_model(o.tiny_model_dir);
  o.model_dir = o.tiny_model_dir;
  o.image_path = write_test_image(dir.filePath("start.png"));
  o.prompt = "a yellow disc drifts to the left";
  o.resolution = 64;
  o.seconds = 1;
  o.steps = 2;
  o.window = 3;  // 1 s at window 3: two sections
  o.seed = 7;
  o.cache = StepCache::kNone;
  o.device = "cpu";
  return o;
}

}  // namespace framesmith::ui::test
