#include "memory/phase.h"

#include <atomic>
#include <mutex>

namespace framesmith::memory {

namespace {
std::mutex& phase_mutex() {
  static std::mutex m;
  return m;
}
std::string& phase_value() {
  static std::string* p = new std::string();  // leaked: read by threads that may outlive statics
  return *p;
}
std::atomic<std::uint64_t> g_generation{0};
}  // namespace

void set_current_phase(const std::string& phase) {
  std::lock_guard<std::mutex> lock(phase_mutex());
  phase_value() = phase;
  g_generation.fetch_add(1, std::memory_order_release);
}

std::string current_phase() {
  std::lock_guard<std::mutex> lock(phase_mutex());
  return phase_value();
}

std::uint64_t phase_generation() {
  return g_generation.load(std::memory_order_acquire);
}

PhaseScope::PhaseScope(const std::string& phase) : previous_(current_phase()) {
  set_current_phase(phase);
}

PhaseScope::~PhaseScope() {
  set_current_phase(previous_);
}

}  // namespace framesmith::memory
