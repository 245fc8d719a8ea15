// Shared by the engine's command and generation tests: a command run in-process with its output
// captured, and a gradient start image (no torch: these tests see only the public API).
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith::test {

struct CmdResult {
  int rc;
  std::string out, err;
};

using Command = std::function<int(const std::vector<std::string>&, std::ostream&, std::ostream&)>;

inline CmdResult run_command(const Command& command, const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = command(args, out, err);
  return {rc, out.str(), err.str()};
}

// Red across, green down, blue 128: a start image whose crop and orientation can be seen.
inline Frames gradient(int w, int h) {
  Frames f;
  f.width = w;
  f.height = h;
  f.count = 1;
  f.rgb.resize(std::size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = f.rgb.data() + (std::size_t(y) * w + x) * 3;
      p[0] = std::uint8_t(x * 255 / w);
      p[1] = std::uint8_t(y * 255 / h);
      p[2] = 128;
    }
  return f;
}

}  // namespace framesmith::test
