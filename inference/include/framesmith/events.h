// Events: every memory sample, plan, recovery, progress step and result of a job, as plain data.
// The same objects go to the callbacks (GUI), to `--events FILE.jsonl` (one JSON object a line)
// and to the log. Sizes in bytes, times in seconds since the job started.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace framesmith {

enum class EventType {
  kMemory = 1,    // periodic sample: allocated, reserved, device_used, total, budget
  kPlan,          // chunk/tile sizes chosen for a phase and the estimate behind them
  kOomRecovered,  // an OOM was caught and the step retried (outcome says how it went)
  kAllocator,     // allocator set-up (expandable segments, cache emptied, ...)
  kResidency,     // a model moved/streamed/offloaded
  kProgress,      // phase, section k/n, step i/m
  kPreview,       // a per-step latent preview is available
  kChunkDecoded,  // decoded frames available
  kSectionDone,   // a section's latents are final (and saved)
  kFinished,
  kError,
  kPeak,    // a phase's measured device peak next to the planner's estimate for it
  kLora,    // a LoRA file read and mapped: layout, modules, strength, how it is applied
  kNotice,  // something the job changed or decided that the user should know ("message")
};

const char* to_string(EventType t);

struct Event {
  EventType type = EventType::kMemory;
  double t_s = 0.0;   // seconds since the job started
  std::string phase;  // "text", "image", "vae encode", "section 2 step 7", "decode chunk 3"
  // Numeric fields by their JSON names ("allocated", "reserved", "requested", "free", ...).
  std::map<std::string, double> numbers;
  // Text fields by their JSON names ("action", "outcome", "message", ...).
  std::map<std::string, std::string> texts;

  double number(const std::string& k, double fallback = 0.0) const {
    auto it = numbers.find(k);
    return it == numbers.end() ? fallback : it->second;
  }
  std::string text(const std::string& k) const {
    auto it = texts.find(k);
    return it == texts.end() ? std::string() : it->second;
  }
};

// One JSON object, no newline: {"t": 12.034, "type": "memory", "phase": "...", ...}.
std::string to_json_line(const Event& e);
// Parses what to_json_line wrote (for replay and the GUI's "open events file"); throws on junk.
Event event_from_json_line(const std::string& line);

}  // namespace framesmith
