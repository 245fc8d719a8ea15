// The engine's side of a job folder (layout in framesmith/job_folder.h): saving what a job has
// made as it goes, and reading it back to resume.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framesmith/job_folder.h"
#include "framesmith/pipeline.h"
#include "pipeline/section_loop.h"
#include "sampling/sample_hunyuan.h"

namespace framesmith::pipeline {

class JobStore {
 public:
  // request.job_dir empty: nothing is saved or loaded (latent frames are still counted).
  // A fresh job creates the folder, removes an earlier job's engine files from it and writes
  // job.json; a resumed one (request.resume) loads whatever the stopped job saved. Either locks
  // the folder first (Error "... in use by process N" while another job holds it).
  explicit JobStore(const GenerationRequest& request);

  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

  // Saved before: used instead of computing them again (resume only).
  const std::optional<sampling::HunyuanConditioning>& conditioning() const { return cond_; }
  const at::Tensor& start_latent() const { return start_latent_; }  // undefined if not saved
  const at::Tensor& end_latent() const { return end_latent_; }      // undefined if not saved
  // Timed prompts 1, 2, ... (prompt 0 is conditioning()); empty when none were saved.
  const std::vector<sampling::HunyuanConditioning>& timed_prompts() const { return timed_; }
  // The finished sections (checked at open: whole, made with these parameters), each read from
  // its file when the loop reaches it.
  ResumedSections resumed_sections() const;
  int sections_saved() const { return static_cast<int>(section_paths_.size()); }
  // Section files a resume set aside (NAME.damaged) to make them again: the first damaged one
  // and every one after it.
  const std::vector<std::string>& damaged_sections() const { return damaged_; }

  // Each writes atomically and skips what is already saved.
  void save_start_image(const at::Tensor& image_hw3);
  void save_conditioning(const sampling::HunyuanConditioning& c);
  void save_start_latent(const at::Tensor& latent);
  void save_end_image(const at::Tensor& image_hw3);
  void save_timed_prompts(const std::vector<sampling::HunyuanConditioning>& later);
  void save_end_latent(const at::Tensor& latent);
  // Section `section` (0-based) of `sections`; returns the path ("" without a folder).
  std::string save_section(int section, int sections, const at::Tensor& latents);

  // FramePack's total_generated_latent_frames after the sections saved or resumed so far.
  std::int64_t latent_frames() const { return latent_frames_; }

 private:
  std::string path(const char* name) const { return dir_ + "/" + name; }
  std::string dir_;
  std::string params_;                 // what the latents depend on (stored with each section)
  std::optional<JobFolderLock> lock_;  // held for the job's life (one writer per folder)
  bool has_image_ = false;
  bool has_end_image_ = false;
  std::vector<sampling::HunyuanConditioning> timed_;
  at::Tensor end_latent_;
  std::optional<sampling::HunyuanConditioning> cond_;
  at::Tensor start_latent_;
  std::vector<std::string> section_paths_;
  std::vector<std::string> damaged_;
  std::int64_t latent_frames_ = 0;
};

// For generate() with request.resume: the saved request with the caller's device, budgets and
// (when given) model folder.
GenerationRequest resumed_request(const GenerationRequest& caller);

}  // namespace framesmith::pipeline
