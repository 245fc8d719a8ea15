// The input clip of a video extension (framesmith-cli generate --video, the studio's video
// input): decoded through FFmpeg and checked, with what the user should know about the
// conversion said in notes rather than silently done.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith::app {

struct InputClip {
  Frames frames;  // every frame, RGB8 at the file's size
  double fps = 30.0;
  // Said to the user before the job starts: a high bit depth converted to 8 bits, a variable
  // frame rate taken at its average.
  std::vector<std::string> notes;
};

// Decoded frames beyond this are refused (a clip is held whole while the job runs).
constexpr std::int64_t kMaxInputClipBytes = 6LL << 30;

// Throws Error naming the file for a missing or unreadable file, one that is not a video or is
// damaged (a frame that does not decode), one with no frames, or one over `max_bytes` decoded.
InputClip read_input_clip(const std::string& path, std::int64_t max_bytes = kMaxInputClipBytes);

// The clip as the request's input video (frames, rate, path).
void set_input_clip(GenerationRequest& req, InputClip clip, const std::string& path);

// A video job's clip read from the path its request names (a job file, a job folder to resume),
// unless the request already holds frames; its notes are returned. Nothing for other jobs.
std::vector<std::string> load_input_clip(GenerationRequest& req);

}  // namespace framesmith::app
