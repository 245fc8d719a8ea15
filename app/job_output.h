// What a generation leaves on disk for the front ends:
//   next to `--out`:  the final MP4 (written when the job ends, complete or not at all), a JSON
//                     sidecar with every parameter, and the input image as cropped and used
//                     (<stem>.input.png);
//   in the job folder (default <out stem>.job/, beside the engine's files listed in
//   framesmith/job_folder.h): the video so far after every section, named as FramePack names it
//   (<job>_<latent frames>.mp4), input.png, and output.json (where the final video goes, so
//   that `framesmith-cli resume JOBDIR` needs nothing else).
// Every file goes to a temporary name first and is renamed into place: a crash, a kill or a
// full disk never leaves half a file under a final name, and never removes an earlier one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

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

  // The video so far, after a section: <job>/<job name>_<latent_frames>.mp4 (without a job
  // folder: the final path is rewritten).
  void write_partial(const Frames& video, std::int64_t latent_frames);
  // The video so far written to the final path (front ends without a job folder).
  void write_partial(const Frames& video, int section, int sections);
  void write_final(const Frames& video);
  // <out stem>.input.png and <job>/input.png.
  void write_input_image(const Frames& image);

  const std::string& video_path() const { return video_path_; }
  const std::string& job_dir() const { return job_dir_; }
  std::string sidecar_path() const;
  std::string input_image_path() const;
  std::string partial_path(std::int64_t latent_frames) const;
  const std::string& last_partial() const { return last_partial_; }

 private:
  void write_video(const std::string& path, const Frames& video);
  std::string video_path_;
  int crf_;
  std::string params_json_;
  std::string job_dir_;
  std::unique_ptr<JobFolderLock> lock_;
  std::string last_partial_;
};

// The job folder's output.json: where `resume` writes the final video, with which CRF.
struct SavedOutput {
  std::string video_path;
  int crf = 16;
};
// Throws Error naming the file when it is missing or damaged.
SavedOutput read_saved_output(const std::string& job_dir);

// Parameters stored by a previous job: `path` is a sidecar .json or an .mp4 with Framesmith
// metadata; `text` is the file's content when it is JSON. Returns the JSON text.
std::string read_params_text(const std::string& path, const std::string& text);

}  // namespace framesmith::app
