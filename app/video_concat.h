// Joins MP4 files of one stream each into one MP4 by copying their packets (no re-encode), the
// way a job's segments become its video: each section's final frames are encoded once, as they
// become final, and the whole video is a remux of those parts, so nothing is encoded twice and
// no step costs more than the frames it adds. FFmpeg types stay in video_concat.cpp.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace framesmith::app {

// Writes `parts`, in order, to `path` (as `path` + ".partial", renamed into place at the end),
// timestamps shifted so that each part follows the one before. `metadata` is added to the tags
// of the first part (its "framesmith_size" is kept). Returns false, writing nothing, when the
// parts' streams differ (codec, size or codec headers, e.g. after a fallback encoder): they
// cannot be joined without decoding. Throws framesmith::Error naming the file on read or write
// errors.
bool concat_videos(const std::vector<std::string>& parts, const std::string& path,
                   const std::map<std::string, std::string>& metadata);

}  // namespace framesmith::app
