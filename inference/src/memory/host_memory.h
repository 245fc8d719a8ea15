// The host's memory, read the way the kernel reports it, and the exception that says it ran out.
//
// Device and host exhaustion need different answers: a smaller decode chunk frees device memory
// but no RAM, and falling back to the CPU needs RAM the device never did (the LLaMA text encoder
// is 32 GB in float32). The OOM ladder (oom_retry.h) tells the two apart by the exception:
// std::bad_alloc, LibTorch's CPU allocator ("DefaultCPUAllocator: not enough memory"), a failed
// pinned allocation and HostMemoryExhausted are host exhaustion; everything else is the device's.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "framesmith/error.h"

namespace framesmith::memory {

// Bytes; -1 where this platform or this /proc does not say.
struct HostMemory {
  std::int64_t total = -1;      // MemTotal
  std::int64_t available = -1;  // MemAvailable: what can be had without swapping
  std::int64_t rss = -1;        // VmRSS of this process
  std::int64_t rss_anon = -1;   // RssAnon: its anonymous (not file-backed) resident memory
  std::int64_t peak_rss = -1;   // VmHWM: its highest VmRSS
};

// From /proc/meminfo and /proc/self/status (Linux); all -1 elsewhere.
HostMemory read_host_memory();
// Parses the two files' text (for tests and for read_host_memory).
HostMemory parse_host_memory(const std::string& meminfo, const std::string& self_status);

// How the governor reads the host (tests replace it to fake a full machine).
using HostMemoryReader = std::function<HostMemory()>;

// The host (RAM, or page-locked memory) cannot give what a phase needs. Thrown by Framesmith's own
// checks (a CPU rung that would not fit in MemAvailable) and allocations (pinned staging buffers,
// the simulated device's host faults); the ladder answers it with its host rung.
class HostMemoryExhausted : public Error {
 public:
  HostMemoryExhausted(const std::string& what, std::int64_t requested, std::int64_t available)
      : Error(what), requested_(requested), available_(available) {}
  std::int64_t requested() const { return requested_; }  // -1: unknown
  std::int64_t available() const { return available_; }  // -1: unknown

 private:
  std::int64_t requested_;
  std::int64_t available_;
};

// Throws HostMemoryExhausted saying `what` needs `bytes` of RAM when the host reports less
// available (nothing when it does not say). The message tells the user what to do.
void require_host_memory(std::int64_t bytes, const std::string& what,
                         const HostMemoryReader& reader);

}  // namespace framesmith::memory
