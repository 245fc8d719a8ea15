#include "video_input.h"

#include <cmath>
#include <sstream>

#include "framesmith/error.h"
#include "video_reader.h"

namespace framesmith::app {
namespace {

std::string mib(std::int64_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

}  // namespace

InputClip read_input_clip(const std::string& path, std::int64_t max_bytes) {
  VideoReader reader;
  reader.open(path);  // Error naming the file: missing, unreadable, no video stream, no decoder
  const std::int64_t frame_bytes = std::int64_t(reader.width()) * reader.height() * 3;
  if (frame_bytes <= 0) throw Error(path + ": the video stream has no picture size");
  // From the container's index first: a clip far too long is refused before decoding it.
  if (std::int64_t(reader.frame_count()) * frame_bytes > max_bytes)
    throw Error(path + ": " + std::to_string(reader.frame_count()) + " frames at " +
                std::to_string(reader.width()) + "x" + std::to_string(reader.height()) + " are " +
                mib(reader.frame_count() * frame_bytes) + " decoded, more than the " +
                mib(max_bytes) +
                " a clip may take; cut it to its last seconds first (only the last 108 frames "
                "are encoded as the history), e.g. ffmpeg -sseof -10 -i IN -c copy OUT");
  InputClip clip;
  try {
    clip.frames = reader.read_all();
  } catch (const Error& e) {
    throw Error(std::string(e.what()) +
                " — the input video is damaged or cut short; nothing was generated");
  }
  if (clip.frames.count == 0)
    throw Error(path + ": the video has no frames that decode (an empty or damaged file)");
  if (clip.frames.count < reader.indexed_frame_count())
    throw Error(path + ": the file is cut short or damaged: its index lists " +
                std::to_string(reader.indexed_frame_count()) + " frames, only " +
                std::to_string(clip.frames.count) + " decode; nothing was generated");
  clip.fps = reader.fps();
  if (!(clip.fps > 0 && clip.fps <= 240)) {
    clip.notes.push_back(path + ": the video states no usable frame rate; 30 fps is assumed");
    clip.fps = 30.0;
  }
  if (reader.bit_depth() > 8)
    clip.notes.push_back(path + ": " + std::to_string(reader.bit_depth()) + "-bit video (" +
                         reader.pixel_format() +
                         "): its frames are converted to 8 bits per channel, as the model "
                         "takes them");
  const double lo = reader.min_frame_interval_s(), hi = reader.max_frame_interval_s();
  if (lo > 0 && hi > lo * 1.05) {
    std::ostringstream o;
    o.precision(3);
    o << path << ": variable frame rate (frames " << lo * 1000 << " to " << hi * 1000
      << " ms apart): every frame is used in order, and the video made runs at the average "
      << clip.fps << " fps";
    clip.notes.push_back(o.str());
  }
  return clip;
}

void set_input_clip(GenerationRequest& req, InputClip clip, const std::string& path) {
  req.input_video_source = {path, clip.fps, clip.frames.count, clip.frames.width,
                            clip.frames.height};
  req.input_video = std::move(clip.frames);
}

std::vector<std::string> load_input_clip(GenerationRequest& req) {
  if (req.input_video_source.path.empty() || req.input_video.count > 0) return {};
  const std::string path = req.input_video_source.path;
  InputClip clip = read_input_clip(path);
  std::vector<std::string> notes = std::move(clip.notes);
  set_input_clip(req, std::move(clip), path);
  return notes;
}

}  // namespace framesmith::app
