// Memory telemetry: a sampler thread that reads a MemoryProbe periodically (default 20 Hz) and
// delivers `memory` events, tagged with the current phase (memory/phase.h), to a callback and
// optionally to a JSONL file. The job thread only ever sets the phase; the sampler reads atomics
// (simulated device) or the caching allocator's stats (CUDA), so it never holds a lock the job's
// allocations need.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "framesmith/events.h"
#include "memory/device_probe.h"
#include "memory/host_memory.h"

namespace framesmith::memory {

struct TelemetryOptions {
  std::chrono::milliseconds period{50};
  std::string jsonl_path;  // appended to, one event a line, when not empty
  // Event::t_s counts from here (the job's start).
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
};

// The `memory` event for one snapshot: numbers allocated, reserved, device_used, total, budget,
// peak (bytes).
Event memory_event(const MemorySnapshot& s, const std::string& phase, double t_s);
// Adds the host's numbers (host_rss, host_rss_anon, host_peak_rss = VmHWM, host_available =
// MemAvailable; those the host reports) to a memory event.
void add_host_memory(Event& e, const HostMemory& h);

class MemoryTelemetry {
 public:
  using Callback = std::function<void(const Event&)>;

  // The probe must outlive this object. on_sample runs on the sampler thread; may be empty.
  MemoryTelemetry(const MemoryProbe& probe, Callback on_sample, TelemetryOptions options = {});
  ~MemoryTelemetry();  // stops; never throws
  MemoryTelemetry(const MemoryTelemetry&) = delete;
  MemoryTelemetry& operator=(const MemoryTelemetry&) = delete;

  // Starts the sampler (throws Error if the JSONL file cannot be opened).
  void start();
  // Takes one last sample, joins the thread. Idempotent. Rethrows the first exception the
  // callback threw (sampling stopped at that point).
  void stop();
  bool running() const { return running_; }

  // Thread-safe; the same as memory::set_current_phase.
  void set_phase(const std::string& phase);
  // Samples delivered so far.
  std::int64_t samples() const { return samples_.load(); }
  // Seconds the sampler spent inside probe + event building + callback + file, in total.
  double busy_seconds() const { return busy_ns_.load() * 1e-9; }

 private:
  void loop();
  void emit();

  const MemoryProbe& probe_;
  Callback on_sample_;
  TelemetryOptions options_;
  std::ofstream file_;
  std::thread thread_;
  std::mutex mutex_;  // guards stop_ for the condition variable; never held while sampling
  std::condition_variable wake_;
  bool stop_ = false;
  bool running_ = false;
  std::exception_ptr error_;
  std::atomic<std::int64_t> samples_{0};
  std::atomic<std::int64_t> busy_ns_{0};
  std::uint64_t phase_generation_ = ~0ull;  // sampler-thread only: cached phase
  std::string phase_;
};

}  // namespace framesmith::memory
