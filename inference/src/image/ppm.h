// Binary PPM (P6) images: the one picture format the engine reads and writes by itself, so that
// framesmith-engine can take a start image and give back frames on machines without Qt or FFmpeg
// (every image tool writes PPM; `ffmpeg -i frame_%05d.ppm` makes a video of the frames).
#pragma once
#include <cstdint>
#include <string>

#include "framesmith/pipeline.h"

namespace framesmith::image {

// The largest side read_ppm accepts: a start image is cropped to a bucket of at most ~1 MP, and
// a hostile header must not make it allocate gigabytes.
constexpr int kMaxPpmSide = 16384;

// One RGB image (Frames with count 1) from a P6 file, 8 or 16 bits per sample (16-bit samples
// are rounded to 8). Throws Error naming the file and what is wrong: not P6, a malformed or
// oversized header, a maxval outside 1..65535, or fewer pixel bytes than the header promises.
Frames read_ppm(const std::string& path);
Frames parse_ppm(const std::string& bytes, const std::string& name);

// One frame as P6 with maxval 255, written to a temporary name and renamed, so that a reader
// never sees half a frame. Throws Error when it cannot be written.
void write_ppm(const std::string& path, const std::uint8_t* rgb, int width, int height);

}  // namespace framesmith::image
