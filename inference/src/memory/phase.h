// The job's current phase ("text", "vae encode", "section 2 step 7", ...), process-wide.
// The job thread sets it; the telemetry sampler tags samples with it, the simulated device names it
// in OOM messages and uses it for phase-targeted fault injection. Setting and reading take a short
// mutex; nothing on the allocation path reads it unless a phase fault is armed or an OOM is thrown.
#pragma once
#include <cstdint>
#include <string>

namespace framesmith::memory {

void set_current_phase(const std::string& phase);
std::string current_phase();
// Bumped on every set_current_phase, so a reader can skip the copy when nothing changed.
std::uint64_t phase_generation();

// Sets the phase for a scope and restores the previous one on exit.
class PhaseScope {
 public:
  explicit PhaseScope(const std::string& phase);
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  std::string previous_;
};

}  // namespace framesmith::memory
