#include "image/ppm.h"

#include <cstdio>
#include <fstream>
#include <iterator>

#include "framesmith/error.h"

namespace framesmith::image {
namespace {

// Reads the header's whitespace and '#' comments (to the end of their line).
void skip_space(const std::string& b, std::size_t& at) {
  while (at < b.size()) {
    if (b[at] == '#') {
      while (at < b.size() && b[at] != '\n' && b[at] != '\r') ++at;
    } else if (b[at] == ' ' || b[at] == '\t' || b[at] == '\n' || b[at] == '\r' || b[at] == '\v' ||
               b[at] == '\f') {
      ++at;
    } else {
      return;
    }
  }
}

// A decimal header field, at most `max`; digits only (no sign, no overflow).
int header_number(const std::string& b, std::size_t& at, int max, const std::string& name,
                  const char* what) {
  skip_space(b, at);
  long long v = 0;
  const std::size_t start = at;
  while (at < b.size() && b[at] >= '0' && b[at] <= '9') {
    v = v * 10 + (b[at] - '0');
    if (v > max) throw Error(name + ": the PPM " + what + " is over " + std::to_string(max));
    ++at;
  }
  if (at == start) throw Error(name + ": the PPM header has no " + what);
  return static_cast<int>(v);
}

}  // namespace

Frames parse_ppm(const std::string& b, const std::string& name) {
  if (b.size() < 2 || b[0] != 'P' || b[1] != '6')
    throw Error(name +
                ": not a binary PPM image (P6); convert it, e.g. with "
                "`ffmpeg -i IMAGE -frames:v 1 start.ppm`");
  std::size_t at = 2;
  const int width = header_number(b, at, kMaxPpmSide, name, "width");
  const int height = header_number(b, at, kMaxPpmSide, name, "height");
  const int maxval = header_number(b, at, 65535, name, "maximum sample value");
  if (width < 1 || height < 1) throw Error(name + ": the PPM image has no pixels");
  if (maxval < 1) throw Error(name + ": the PPM maximum sample value must be 1..65535");
  // Exactly one whitespace byte separates the header from the samples.
  if (at >= b.size() || !(b[at] == ' ' || b[at] == '\t' || b[at] == '\n' || b[at] == '\r'))
    throw Error(name + ": the PPM header does not end in whitespace");
  ++at;
  const std::size_t bytes_per_sample = maxval > 255 ? 2 : 1;
  const std::size_t samples = std::size_t(width) * height * 3;
  if (b.size() - at < samples * bytes_per_sample)
    throw Error(name + ": the PPM image is cut short (" + std::to_string(b.size() - at) +
                " pixel bytes of " + std::to_string(samples * bytes_per_sample) + ")");
  Frames f;
  f.width = width;
  f.height = height;
  f.count = 1;
  f.rgb.resize(samples);
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  for (std::size_t i = 0; i < samples; ++i) {
    const unsigned v = bytes_per_sample == 2 ? (unsigned(p[2 * i]) << 8) | p[2 * i + 1] : p[i];
    if (v > unsigned(maxval))
      throw Error(name + ": a PPM sample is over the header's maximum " + std::to_string(maxval));
    f.rgb[i] = static_cast<std::uint8_t>((v * 255u + unsigned(maxval) / 2) / unsigned(maxval));
  }
  return f;
}

Frames read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the image");
  // A header is a few dozen bytes; the largest image accepted is kMaxPpmSide² pixels of 2 bytes.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff limit = std::streamoff(kMaxPpmSide) * kMaxPpmSide * 6 + 4096;
  if (size < 0 || size > limit) throw Error(path + ": too large for a start image");
  in.seekg(0);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!in.read(bytes.data(), size)) throw Error(path + ": cannot read the image");
  return parse_ppm(bytes, path);
}

void write_ppm(const std::string& path, const std::uint8_t* rgb, int width, int height) {
  const std::string tmp = path + ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << "P6\n" << width << " " << height << "\n255\n";
    out.write(reinterpret_cast<const char*>(rgb), std::streamsize(width) * height * 3);
    if (!out.flush()) throw Error(path + ": cannot write the frame");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error(path + ": cannot write the frame");
}

}  // namespace framesmith::image
