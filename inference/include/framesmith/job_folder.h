// Job folders: what a generation keeps on disk so that a stopped, failed or killed job can be
// resumed (GenerationRequest::job_dir and ::resume in pipeline.h). The engine writes
//   job.json                   the parameters (request_to_json)
//   start_image.safetensors    "image": the start image as cropped to its bucket (uint8 H x W x 3)
//   conditioning.safetensors   prompt and image embeddings (conditioning-file tensor names)
//   start_latent.safetensors   "latent": the encoded start image (float32, scaled)
//   end_image.safetensors, end_latent.safetensors   the end frame, as the start's (when given)
//   conditioning_prompt<i>.safetensors   timed prompt i >= 1 (prompt 0: conditioning.safetensors)
//   section_0000.safetensors   "latents": each finished section's new latents, generation order
// every file to a temporary name renamed into place, each section's before the next one starts.
// Front ends add their own files (videos, a PNG of the input); the engine leaves those alone.
#pragma once
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith {

struct JobFolderInfo {
  bool has_job = false;   // job.json is there
  int sections_done = 0;  // finished sections saved, consecutive from the first
  int sections_total = 0;
  // Section files at or after sections_done that exist but are not whole (cut short by a kill
  // or a full disk): a resume sets them aside and makes them again.
  std::vector<std::string> damaged_sections;
  bool finished() const { return has_job && sections_done >= sections_total; }
};

// What `dir` holds; a missing folder or one without job.json gives has_job == false. Throws Error
// for an unreadable job.json.
JobFolderInfo inspect_job_folder(const std::string& dir);

// The saved request: parameters and the cropped start image, with job_dir = dir and
// resume = true. Throws Error naming the file when the folder holds no job or is damaged.
GenerationRequest load_job_request(const std::string& dir);

// One job folder, one writer: an advisory lock (flock) on <dir>/job.lock, held while the object
// lives. The kernel drops it when the holder exits or is killed, so a dead job never leaves a
// stale lock behind; the file's content (the holder's pid) only serves the message. Creates the
// folder when missing. Throws Error "DIR is in use by process N (...)" when another process
// holds it. Re-entrant within one process: a front end locks before writing its own files, and
// generate() locks the same folder again without conflict.
class JobFolderLock {
 public:
  explicit JobFolderLock(const std::string& dir);
  ~JobFolderLock();
  JobFolderLock(const JobFolderLock&) = delete;
  JobFolderLock& operator=(const JobFolderLock&) = delete;

 private:
  std::string key_;  // the folder's canonical path
};

// The file names above (for front ends and tests).
std::string job_params_path(const std::string& dir);
std::string job_section_path(const std::string& dir, int section);  // 0-based section

}  // namespace framesmith
