// MP4 output through FFmpeg's libraries (no `ffmpeg` program needed): H.264 with a CRF, metadata
// tags, and a temporary file renamed into place on finish() so that a crash or a full disk never
// leaves a truncated video under the final name. FFmpeg types stay in video_writer.cpp.
//
// Odd sizes: 4:2:0 video needs even width and height. An odd frame is padded to the next even size
// by repeating its last column / row (no dark border). The MP4 then declares the padded size, which
// is the size of the pixels really stored; the source size is recorded in the tag
// "framesmith_size" ("WxH"), and VideoReader crops back to it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace framesmith::app {

// The metadata tag holding the source size of a padded (odd-sized) video.
inline constexpr const char* kSizeTag = "framesmith_size";

// Lowers FFmpeg's own console logging to fatal errors only (x264 prints statistics at info level,
// and absent hardware encoders print errors while they are tried). Errors still reach the caller
// through exceptions. Process-wide; call once from a front end if wanted.
void quiet_ffmpeg_logging();

class VideoWriter {
 public:
  VideoWriter();
  ~VideoWriter();  // without finish(): the temporary file is deleted, the final name untouched
  VideoWriter(VideoWriter&&) noexcept;
  VideoWriter& operator=(VideoWriter&&) noexcept;
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // Encoders tried in order, each by actually opening it: libx264, libopenh264, hardware H.264
  // encoders that accept frames in system memory, then mpeg4 (MPEG-4 Part 2) as the last resort.
  static std::vector<std::string> default_encoders();
  // Replaces the candidate list for the next open() (tests force fallbacks with this).
  void set_encoders(std::vector<std::string> names);

  // Starts writing `path` (written as `path` + ".partial" until finish()). `preset` is an x264
  // preset name (ultrafast ... placebo), mapped to the nearest setting of other encoders; `crf` is
  // 0..51 (lower is better; 16 is visually lossless for generated video). Metadata keys may be
  // standard ("title", "comment") or custom ("framesmith_params"). Throws framesmith::Error
  // naming the path for bad arguments, a missing / unwritable folder, or no usable encoder.
  void open(const std::string& path, int width, int height, double fps = 30, int crf = 16,
            const std::string& preset = "medium",
            const std::map<std::string, std::string>& metadata = {});

  // One frame of RGB24 pixels, `stride` bytes per row (>= width * 3). Throws framesmith::Error
  // naming the path on write errors (disk full, file size limit).
  void write_frame(const std::uint8_t* rgb24, int stride);

  // Flushes the encoder, writes the index (moved to the front: faststart) and renames the
  // temporary file to the final path. Throws framesmith::Error if nothing was written or on
  // write errors; the temporary file is removed then.
  void finish();

  bool is_open() const;
  const std::string& path() const;
  // The encoder that opened (e.g. "libx264"), empty before open().
  const std::string& encoder() const;
  // One line per encoder tried before the chosen one: "name: why it was not used".
  const std::vector<std::string>& encoder_attempts() const;
  int frames_written() const;  // since the last open()
  // The stored (even) size of the last open(); equals the frame size unless that was odd.
  int coded_width() const;
  int coded_height() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> encoders_;
  std::vector<std::string> attempts_;
  std::string encoder_;
  std::string path_;
  int frames_ = 0;
  int coded_w_ = 0;
  int coded_h_ = 0;
};

}  // namespace framesmith::app
