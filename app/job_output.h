// What a generation leaves on disk for the front ends:
//   next to `--out`:  the final MP4 (written when the job ends, complete or not at all), a JSON
//                     sidecar with every parameter, and the input image as cropped and used
//                     (<stem>.input.png);
//   in the job folder (default <out stem>.job/, beside the engine's files listed in
//   framesmith/job_folder.h): the video so far as segments (segments/final_<first frame>.mp4,
//   each encoded once, when its frames become final, and segments/tail_<first frame>.mp4, the
//   frames the next section still changes) listed in video order by video-so-far.ffconcat
//   (ffplay -f concat -safe 0 FILE plays it), input.png, and output.json (where the final video
//   goes, so that `framesmith-cli resume JOBDIR` needs nothing else). The final MP4 joins the
//   segments without re-encoding them. Without a job folder the segments go to
//   <out stem>.segments/, removed once the final MP4 is written.
// Every file goes to a temporary name first and is renamed into place: a crash, a kill or a
// full disk never leaves half a file under a final name, and never removes an earlier one.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"

namespace framesmith::app {

// <folder of video>/<stem of video>.job
std::string default_job_dir(const std::string& video_path);

class JobOutput {
 public:
  // Makes the output folder and the job folder when missing, and writes the sidecar and the job
  // folder's output.json, so that an unwritable folder is found before any work starts (Error
  // naming the folder or file). `job_dir` empty: request.job_dir; both empty: no job folder.
  // Refuses, before writing anything, an output path that exists and is not a regular file, and
  // a job folder another process is using (the lock is held while this object lives).
  JobOutput(std::string video_path, int crf, const GenerationRequest& request,
            std::string job_dir = std::string());

  // One section's chunk (GenerationCallbacks::on_chunk): its final frames become a segment, its
  // tail replaces the previous tail, and the playlist is rewritten; the cost is the chunk's, not
  // the video's. The first chunk a JobOutput gets starts the segments afresh (a resume hands out
  // the whole video again, so what a killed job left half-written is replaced). Returns the
  // segment file of the chunk's final frames (empty when it had none).
  std::string write_chunk(const VideoChunk& chunk);
  // The final MP4 from the segments so far (all of them, the tail included when the job
  // stopped early), joined without re-encoding; when the segments cannot be joined as they are
  // (a fallback encoder's headers differ), they are decoded and encoded once more, one frame
  // at a time. Throws Error when no chunk was written.
  void write_final_from_segments();
  bool has_segments() const { return !finals_.empty() || !tail_.empty(); }
  // Frames in the segments (final and tail).
  std::int64_t segment_frames() const { return segment_frames_; }

  // The whole video in memory (front ends that do not stream, tests): <job>/<job name>_
  // <latent_frames>.mp4 as FramePack names its partial videos (without a job folder: the final
  // path is rewritten), and the final video.
  void write_partial(const Frames& video, std::int64_t latent_frames);
  void write_final(const Frames& video);
  // <out stem>.input.png and <job>/input.png.
  void write_input_image(const Frames& image);

  const std::string& video_path() const { return video_path_; }
  const std::string& job_dir() const { return job_dir_; }
  std::string sidecar_path() const;
  std::string input_image_path() const;
  std::string partial_path(std::int64_t latent_frames) const;
  const std::string& last_partial() const { return last_partial_; }
  std::string segments_dir() const;
  std::string playlist_path() const;

 private:
  void write_video(const std::string& path, const Frames& video);
  void start_segments();
  void write_playlist();
  std::vector<std::string> segments_in_order() const;
  void reencode_segments(const std::vector<std::string>& parts);
  std::string video_path_;
  int crf_;
  double fps_ = 30.0;  // the input clip's for a video extension, else FramePack's 30
  std::string params_json_;
  std::string job_dir_;
  std::unique_ptr<JobFolderLock> lock_;
  std::string last_partial_;
  bool segments_started_ = false;
  std::map<std::int64_t, std::string> finals_;  // first frame -> segment file
  std::string tail_;
  std::int64_t tail_first_ = 0;
  std::int64_t segment_frames_ = 0;
  std::int64_t tail_frames_ = 0;
};

// The job folder's output.json: where `resume` writes the final video, with which CRF.
struct SavedOutput {
  std::string video_path;
  int crf = 16;
};
// Throws Error naming the file when it is missing or damaged.
SavedOutput read_saved_output(const std::string& job_dir);

// One segment of a job's video so far, as <job>/video-so-far.ffconcat lists it.
struct VideoSegment {
  std::string path;              // absolute
  std::int64_t first_frame = 0;  // in the video, from the segment's name
};
// The segments the job folder's playlist lists, in video order. Empty when there is no playlist,
// or when it lists a file that is missing or not named as JobOutput names segments, or the
// segments do not start at frame 0 in increasing order: then they are not the video.
std::vector<VideoSegment> read_segment_playlist(const std::string& job_dir);

// Parameters stored by a previous job: `path` is a sidecar .json or an .mp4 with Framesmith
// metadata; `text` is the file's content when it is JSON. Returns the JSON text.
std::string read_params_text(const std::string& path, const std::string& text);

}  // namespace framesmith::app
