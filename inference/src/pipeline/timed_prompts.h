// Timestamped prompts as FramePack-Studio writes them: "[0s: a cat sits] [2s: the cat jumps]"
// (also "[1s-3s: ...]"; text outside brackets holds for the whole video). Each section is
// conditioned on the prompt active at its time, and a change of prompt can be blended over.
// Parsing, snapping to section boundaries, mirroring for the backward loop and the per-section
// choice follow FramePack-Studio's prompt_handler and worker exactly (checked by the
// sections_timed cases), quirks included: the blend is keyed on the position of a change in the
// prompt list, compared with the section's index.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace framesmith::pipeline {

struct PromptSpan {
  std::string prompt;
  double start_s = 0.0;
  std::optional<double> end_s;  // none: until the end
};

// Whether `text` holds a timestamp like "[2s: ...]" (other brackets are part of the prompt).
bool has_timestamps(const std::string& text);

// The spans of `text` for a video of `total_seconds` with `latent_window` latents a section:
// sorted by start, ends filled in from the next start (the last: the video's end), snapped to
// multiples of a section's (window · 4 − 3) / 30 s, and for the backward (original) loop
// mirrored (t → total − t) and sorted again. Text without timestamps: one span.
std::vector<PromptSpan> parse_timed_prompt(const std::string& text, double total_seconds,
                                           int latent_window, bool backwards);

// Problems a user should hear about before a job starts: a timestamp past the video's end,
// overlapping spans ("[0s-3s: a] [2s: b]"), an empty prompt text. Empty: fine. Unsorted
// timestamps are not a problem (they are sorted), but are reported as a note by the caller.
std::vector<std::string> timed_prompt_problems(const std::string& text, double total_seconds);

// What one section is conditioned on: prompt `first`, or (1 − weight) · first + weight · second
// (embeddings and poolers; the first's mask) when `second` differs.
struct SectionPrompt {
  int first = 0;
  int second = 0;
  double weight = 0.0;
  bool blended() const { return second != first; }
};

class PromptSchedule {
 public:
  // `blend_sections` 0: no blending.
  PromptSchedule(std::vector<PromptSpan> spans, int blend_sections);
  // The distinct prompt texts, in the order of the spans: each is encoded once.
  const std::vector<std::string>& prompts() const { return prompts_; }
  const std::vector<PromptSpan>& spans() const { return spans_; }
  // Section `section` (0-based, in generation order), with `generated_latent_frames` latents made
  // so far (FramePack's total_generated_latent_frames: F1 counts its start latent).
  SectionPrompt for_section(int section, std::int64_t generated_latent_frames) const;

 private:
  int index_of(const std::string& prompt) const;
  std::vector<PromptSpan> spans_;
  std::vector<std::string> prompts_;
  int blend_sections_ = 0;
  std::vector<std::pair<int, int>> changes_;  // (position in spans_, prompt index)
};

}  // namespace framesmith::pipeline
