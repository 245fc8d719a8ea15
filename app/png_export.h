// RGB24 frames -> PNG files through QImage (written via QSaveFile: complete or not at all).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith::app {

// One RGB24 image (`stride` bytes per row) as a PNG. Throws framesmith::Error naming the path.
void write_png(const std::uint8_t* rgb24, int width, int height, int stride,
               const std::string& path);

// Frame `index` of `frames` as a PNG at `path`.
void export_png(const Frames& frames, int index, const std::string& path);

// Every frame as `<folder>/<stem>_00000.png`, ... (at least 5 digits, more for long videos);
// the folder is created if missing. Returns the paths written, in frame order.
std::vector<std::string> export_pngs(const Frames& frames, const std::string& folder,
                                     const std::string& stem = "frame");

}  // namespace framesmith::app
