// Image files -> engine frames, through QImage (PNG, JPEG, WebP, BMP, ...).
#pragma once
#include <QImage>
#include <string>

#include "framesmith/pipeline.h"

namespace framesmith::app {

// Any QImage as one RGB8 frame (alpha composited on white; every format converted). Deep copy.
Frames frames_from_qimage(const QImage& image);

// Loads any image Qt can read as RGB8 (alpha composited on white, 16-bit and CMYK converted).
// Throws framesmith::Error with a readable message for unreadable, empty or absurd images.
Frames load_image_rgb(const std::string& path);

}  // namespace framesmith::app
