// The OOM ladder every phase runs in: try the phase at its largest setting (rung 0: "chunk 16"),
// and on an out-of-memory error free the allocator's cache and try the next, smaller rung
// ("chunk 4", "chunk 1", ...), reporting each recovery as an `oom_recovered` event. Only when the
// last rung fails does the job fail, with an Error that says what was needed.
//
// Host exhaustion (RAM or page-locked memory: host_memory.h) has its own rung: a smaller device
// setting frees no RAM, so the ladder releases what the host holds for speed only (caches, the
// pinned staging ring: OomLadderHooks::release_host_memory) and retries the SAME rung once; its
// events say `memory: "host"` (device ones `memory: "device"`), and if the host still cannot give
// it, the job stops with a message about RAM, not about the card.
#pragma once
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "framesmith/events.h"

namespace framesmith::memory {

class MemoryProbe;

// What run_with_oom_ladder throws when even the last rung ran out of memory: an Error (one
// readable sentence saying what was needed) that callers can tell apart from bad input.
class OutOfMemory : public Error {
 public:
  explicit OutOfMemory(const std::string& what) : Error(what) {}
};

enum class MemoryKind { kDevice, kHost };
const char* to_string(MemoryKind kind);  // "device", "host"

struct OomLadderHooks {
  // Where `free` numbers come from and whose empty_cache runs between rungs; may be null.
  MemoryProbe* probe = nullptr;
  // Runs between rungs instead of probe->empty_cache() when set.
  std::function<void()> empty_cache;
  // Event::t_s (seconds since the job started); events carry 0 when unset.
  std::function<double()> now_s;
  // The host rung: frees host memory that is only there for speed; unset: no host rung.
  std::function<void()> release_host_memory;
};

// If `e` is an out-of-memory error (c10::OutOfMemoryError; a c10::Error whose message says CUDA,
// cuBLAS or cuDNN ran out of memory, as older LibTorch versions throw; std::bad_alloc; LibTorch's
// CPU allocator's "not enough memory"; HostMemoryExhausted), returns true, its one-line message
// and which memory ran out.
bool is_out_of_memory(const std::exception& e, std::string* message = nullptr,
                      MemoryKind* kind = nullptr);

// The byte count in "Tried to allocate 2.00 GiB" (CUDA) or "... (2147483648 bytes)" (simulated
// device); -1 if the message has none.
std::int64_t requested_bytes_from_message(const std::string& message);

// "chunk 16", "chunk 4" -> "chunk 16→4"; "full", "tiled" -> "full→tiled".
std::string rung_change_text(const std::string& from, const std::string& to);

// Calls attempt(0), attempt(1), ... until one returns without an out-of-memory error, and returns
// that rung's index. Between rungs it empties the cache and emits an `oom_recovered` event
// (phase, rung, requested, free, action "chunk 16→4", outcome "retry"); when a retried rung
// succeeds, one more (action "chunk 4", outcome "ok"). When the last rung runs out of memory it
// emits outcome "failed" and throws OutOfMemory naming the phase, the rung and the bytes asked for.
// Other exceptions pass through untouched. `rungs` must not be empty; on_event may be empty.
std::size_t run_with_oom_ladder(const std::string& phase, const std::vector<std::string>& rungs,
                                const std::function<void(std::size_t rung)>& attempt,
                                const std::function<void(const Event&)>& on_event,
                                const OomLadderHooks& hooks = {});

}  // namespace framesmith::memory
