// PNG export of RGB24 frames: pixels survive exactly, names are numbered, bad indices throw.
#include <gtest/gtest.h>

#include <QImage>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "framesmith/error.h"
#include "framesmith/pipeline.h"
#include "png_export.h"

namespace fs = std::filesystem;

namespace {

framesmith::Frames pattern(int w, int h, int n) {
  framesmith::Frames f;
  f.width = w;
  f.height = h;
  f.count = n;
  f.rgb.resize(std::size_t(w) * h * 3 * n);
  for (std::size_t i = 0; i < f.rgb.size(); ++i) f.rgb[i] = std::uint8_t(i * 37 + i / 7);
  return f;
}

void expect_same_pixels(const std::string& path, const framesmith::Frames& f, int index) {
  QImage img(QString::fromStdString(path));
  ASSERT_FALSE(img.isNull()) << path;
  img = img.convertToFormat(QImage::Format_RGB888);
  ASSERT_EQ(img.width(), f.width);
  ASSERT_EQ(img.height(), f.height);
  for (int y = 0; y < f.height; ++y) {
    const auto* row = f.frame(index) + std::size_t(y) * f.width * 3;
    ASSERT_EQ(0, std::memcmp(img.constScanLine(y), row, std::size_t(f.width) * 3)) << "row " << y;
  }
}

TEST(PngExport, AllFramesAndOneFrame) {
  const fs::path dir =
      fs::temp_directory_path() / ("framesmith_png_test_" + std::to_string(std::random_device{}()));
  const framesmith::Frames f = pattern(33, 17, 3);
  const auto paths = framesmith::app::export_pngs(f, (dir / "frames").string());
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(fs::path(paths[2]).filename().string(), "frame_00002.png");
  for (int i = 0; i < 3; ++i) expect_same_pixels(paths[i], f, i);

  const std::string one = (dir / "one.png").string();
  framesmith::app::export_png(f, 1, one);
  expect_same_pixels(one, f, 1);
  EXPECT_THROW(framesmith::app::export_png(f, 3, one), framesmith::Error);
  EXPECT_THROW(framesmith::app::export_png(f, 0, (dir / "no/such/x.png").string()),
               framesmith::Error);
  fs::remove_all(dir);
}

}  // namespace
