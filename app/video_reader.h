// Video files -> RGB24 frames through FFmpeg's libraries (any container / codec the installed
// FFmpeg reads). Honours the "framesmith_size" tag that VideoWriter leaves on odd-sized videos:
// width(), height() and the frames are the source size, not the padded stored size.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith::app {

class VideoReader {
 public:
  VideoReader();
  ~VideoReader();
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  // Opens the first video stream of `path`. Throws framesmith::Error naming the path if the file
  // is missing, unreadable, has no video stream or no decoder for it.
  void open(const std::string& path);
  bool is_open() const;

  int width() const;
  int height() const;
  double fps() const;
  // From the container's index; read_all() replaces it with the number really decoded.
  int frame_count() const;
  // The frame count the container's index states (0 when it states none, e.g. Matroska): a
  // file that decodes fewer was cut short.
  int indexed_frame_count() const;
  // Container tags ("title", "comment", custom keys such as "framesmith_params"), without the
  // internal "framesmith_size".
  const std::map<std::string, std::string>& metadata() const;
  const std::string& codec() const;  // decoder name, e.g. "h264"
  // The stored pixel format ("yuv420p", "yuv420p10le", ...) and its bits per component (frames
  // are converted to 8-bit RGB whatever it is).
  const std::string& pixel_format() const;
  int bit_depth() const;
  // After read_all(): the shortest and longest time between two frames, in seconds (0 with
  // fewer than two frames). They differ in a variable-frame-rate video.
  double min_frame_interval_s() const;
  double max_frame_interval_s() const;

  // Frame `index` (0-based) as width*height*3 bytes. Sequential reads decode each frame once; a
  // read before the last one decodes again from the start.
  std::vector<std::uint8_t> read_frame(int index);
  // Every frame, decoded from the start.
  Frames read_all();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace framesmith::app
