// What a request will make and need, shown before Start: sections, frames and the cropped size
// (instant), and the engine's memory plan for it (framesmith/memory_plan.h: a peak per phase).
#pragma once
#include <QString>
#include <cstdint>

#include "framesmith/pipeline.h"

namespace framesmith::app {

struct JobEstimate {
  int sections = 0;  // FramePack: max(round(seconds * 30 / (window * 4)), 1), Python's round
  int frames = 0;    // 30 fps frames of the finished video
  int width = 0;     // the bucket the start image is cropped to (0 without an image)
  int height = 0;
};

// `image_width`/`image_height`: the start image's size (0 when none is chosen yet).
JobEstimate estimate_job(const GenerationRequest& r, int image_width, int image_height);
// "5 sections · 61 frames (2.0 s at 30 fps) · 128×128".
QString describe_estimate(const JobEstimate& e);

struct MemoryPlanText {
  QString summary;  // one line: "memory plan: low-vram, peak ≈ 19.0 MiB (decode) ..."
  QString details;  // the whole plan, one line per phase
  std::int64_t peak_bytes = -1;  // the largest phase estimate; -1 when there is none
};

// The engine's memory plan for `r` (its model, device, budget, preserved memory, resolution,
// length and window; the image size when known). Reads configs and safetensors headers, so it
// takes milliseconds to a second: call it off the GUI thread. Never throws: problems come back
// as the summary. On CUDA without a budget there is no plan (it would have to start CUDA before
// the job chose its allocator settings).
MemoryPlanText memory_plan(const GenerationRequest& r, int image_width, int image_height);

}  // namespace framesmith::app
