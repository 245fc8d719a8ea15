#include "memory/telemetry.h"

#include <utility>

#include "framesmith/error.h"
#include "memory/host_memory.h"
#include "memory/phase.h"

namespace framesmith::memory {

Event memory_event(const MemorySnapshot& s, const std::string& phase, double t_s) {
  Event e;
  e.type = EventType::kMemory;
  e.t_s = t_s;
  e.phase = phase;
  e.numbers["allocated"] = static_cast<double>(s.allocated);
  e.numbers["reserved"] = static_cast<double>(s.reserved);
  e.numbers["device_used"] = static_cast<double>(s.device_used);
  e.numbers["total"] = static_cast<double>(s.total);
  e.numbers["budget"] = static_cast<double>(s.budget);
  e.numbers["peak"] = static_cast<double>(s.peak);
  return e;
}

void add_host_memory(Event& e, const HostMemory& h) {
  const std::pair<const char*, std::int64_t> fields[] = {{"host_rss", h.rss},
                                                         {"host_rss_anon", h.rss_anon},
                                                         {"host_peak_rss", h.peak_rss},
                                                         {"host_available", h.available}};
  for (const auto& [name, bytes] : fields)
    if (bytes >= 0) e.numbers[name] = static_cast<double>(bytes);
}

MemoryTelemetry::MemoryTelemetry(const MemoryProbe& probe, Callback on_sample,
                                 TelemetryOptions options)
    : probe_(probe), on_sample_(std::move(on_sample)), options_(std::move(options)) {
  if (options_.period.count() <= 0) throw Error("telemetry period must be positive");
}

MemoryTelemetry::~MemoryTelemetry() {
  try {
    stop();
  } catch (...) {
    // A callback failure was already recorded; a destructor must not throw.
  }
}

void MemoryTelemetry::start() {
  if (running_) return;
  if (!options_.jsonl_path.empty()) {
    file_.open(options_.jsonl_path, std::ios::app);
    if (!file_) throw Error("cannot open memory events file " + options_.jsonl_path);
  }
  stop_ = false;
  error_ = nullptr;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
}

void MemoryTelemetry::stop() {
  if (!running_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  running_ = false;
  if (file_.is_open()) file_.close();
  if (error_) {
    std::exception_ptr e = std::exchange(error_, nullptr);
    std::rethrow_exception(e);
  }
}

void MemoryTelemetry::set_phase(const std::string& phase) {
  set_current_phase(phase);
}

void MemoryTelemetry::loop() {
  auto next = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    lock.unlock();
    emit();
    lock.lock();
    if (error_) return;
    next += options_.period;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // fell behind (loaded machine): no burst of catch-up samples
    wake_.wait_until(lock, next, [this] { return stop_; });
  }
  lock.unlock();
  emit();  // the state at the end, so a file or plot always ends with the final numbers
}

void MemoryTelemetry::emit() {
  const auto start = std::chrono::steady_clock::now();
  try {
    const std::uint64_t generation = phase_generation();
    if (generation != phase_generation_) {
      phase_generation_ = generation;
      phase_ = current_phase();
    }
    const double t_s = std::chrono::duration<double>(start - options_.t0).count();
    Event e = memory_event(probe_.snapshot(), phase_, t_s);
    add_host_memory(e, read_host_memory());  // the host is a budget too: sampled alongside
    if (on_sample_) on_sample_(e);
    if (file_.is_open()) {
      file_ << to_json_line(e) << '\n';
      file_.flush();  // a crash (or a real OOM kill) must not lose the lines before it
    }
    samples_.fetch_add(1);
  } catch (...) {
    error_ = std::current_exception();
  }
  busy_ns_.fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
}

}  // namespace framesmith::memory
