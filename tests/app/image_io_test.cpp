// Opening start pictures as people have them: large, cut short, or under a path that is not
// UTF-8. Each either loads exactly or is refused with one clear line.
#include <gtest/gtest.h>

#include <QImage>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "framesmith/error.h"
#include "image_io.h"

namespace fs = std::filesystem;
using namespace framesmith;

namespace {

class ImageIo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("framesmith_image_io_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  static QImage gradient(int w, int h) {
    QImage img(w, h, QImage::Format_RGB888);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) img.setPixel(x, y, qRgb(x % 256, y % 256, (x + y) % 256));
    return img;
  }

  fs::path dir_;
};

// Qt's default allocation limit (256 MiB) refused this valid picture although the stated limit
// is 16384 pixels per side.
TEST_F(ImageIo, LargePictureWithinTheStatedLimitLoads) {
  QImage big(5800, 5800, QImage::Format_RGB888);
  big.fill(qRgb(10, 200, 30));
  ASSERT_TRUE(big.save(QString::fromStdString(file("big.png"))));
  const Frames f = app::load_image_rgb(file("big.png"));
  EXPECT_EQ(f.width, 5800);
  EXPECT_EQ(f.height, 5800);
  EXPECT_EQ(f.rgb[3 * (5800 * 5799 + 5799) + 1], 200);
}

// A JPEG cut short used to load with half the picture grey.
TEST_F(ImageIo, TruncatedJpegIsRefused) {
  ASSERT_TRUE(gradient(256, 256).save(QString::fromStdString(file("whole.jpg")), "JPEG", 90));
  EXPECT_NO_THROW(app::load_image_rgb(file("whole.jpg")));
  fs::copy_file(file("whole.jpg"), file("cut.jpg"));
  fs::resize_file(file("cut.jpg"), fs::file_size(file("whole.jpg")) / 2);
  try {
    app::load_image_rgb(file("cut.jpg"));
    ADD_FAILURE() << "a truncated JPEG was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut short"), std::string::npos) << e.what();
  }
}

// A path with a byte that is not UTF-8 was "File not found": the bytes are used as they are.
TEST_F(ImageIo, PathThatIsNotUtf8Loads) {
  const std::string path = file("picture_\xFF\xFE.png");
  ASSERT_TRUE(gradient(64, 48).save(QString::fromStdString(file("plain.png"))));
  fs::copy_file(file("plain.png"), path);
  const Frames f = app::load_image_rgb(path);
  EXPECT_EQ(f.width, 64);
  EXPECT_EQ(f.height, 48);
  try {
    app::load_image_rgb(file("missing_\xFF.png"));
    ADD_FAILURE() << "a missing file was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing_\\xFF.png"), std::string::npos) << e.what();
  }
}

}  // namespace
