#include "memory/oom_retry.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <new>

#include "framesmith/error.h"
#include "framesmith/units.h"
#include "memory/device_probe.h"
#include "memory/host_memory.h"

namespace framesmith::memory {

namespace {

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Messages of allocation failures from the CUDA caching allocator (before c10::OutOfMemoryError
// existed), from cudaMalloc itself, and from cuBLAS/cuDNN workspaces.
bool message_says_oom(const std::string& message) {
  const std::string m = lower(message);
  return m.find("out of memory") != std::string::npos ||
         m.find("status_alloc_failed") != std::string::npos ||
         m.find("not enough memory") != std::string::npos;
}

// Host-side allocation failures that LibTorch reports as plain c10::Errors: its CPU allocator
// ("DefaultCPUAllocator: not enough memory: you tried to allocate ..."), pinned memory
// (cudaHostAlloc through the caching host allocator) and the simulated device's host faults.
bool message_says_host(const std::string& message) {
  const std::string m = lower(message);
  return m.find("cpuallocator") != std::string::npos || m.find("pinned") != std::string::npos ||
         m.find("cudahostalloc") != std::string::npos ||
         m.find("hostallocator") != std::string::npos ||
         m.find("host out of memory") != std::string::npos;
}

struct Failure {
  std::string message;
  std::int64_t requested = -1;
  MemoryKind kind = MemoryKind::kDevice;
  // Host failures: the host's memory read once, at the failure, so that the event and the
  // message report the same numbers.
  HostMemory host;
};

Event oom_event(const std::string& phase, std::size_t rung, const Failure& f,
                const OomLadderHooks& hooks) {
  Event e;
  e.type = EventType::kOomRecovered;
  e.t_s = hooks.now_s ? hooks.now_s() : 0.0;
  e.phase = phase;
  e.numbers["rung"] = static_cast<double>(rung);
  e.texts["memory"] = to_string(f.kind);
  if (f.requested >= 0) e.numbers["requested"] = static_cast<double>(f.requested);
  if (f.kind == MemoryKind::kHost && f.host.available >= 0)
    e.numbers["host_available"] = static_cast<double>(f.host.available);
  if (hooks.probe) {
    const MemorySnapshot s = hooks.probe->snapshot();
    const std::int64_t free = free_bytes(s);
    if (free >= 0) e.numbers["free"] = static_cast<double>(free);
    e.numbers["allocated"] = static_cast<double>(s.allocated);
    e.numbers["budget"] = static_cast<double>(s.budget);
  }
  if (!f.message.empty()) e.texts["message"] = f.message;
  return e;
}

// The free memory at the moment of the failure, as the allocator's message states it: the
// simulated device's "(N bytes) free", CUDA 2.x's "of which X is free", CUDA 1.x's "; X free;".
// -1 when the message does not say. (The probe, read after the failed attempt unwound, sees the
// attempt's tensors freed again: using it made messages such as "tried to allocate 64 KiB with
// 64 KiB free".)
std::int64_t free_bytes_at_failure(const std::string& m) {
  const auto size_at = [&](std::size_t begin, std::size_t end) -> std::int64_t {
    if (begin == std::string::npos || end == std::string::npos || end <= begin) return -1;
    try {
      return parse_size(m.substr(begin, end - begin));
    } catch (const Error&) {
      return -1;
    }
  };
  const std::size_t exact = m.find(" bytes) free");
  if (exact != std::string::npos) {
    const std::size_t open = m.rfind('(', exact);
    if (open != std::string::npos) return size_at(open + 1, exact);
  }
  const std::string of_which = "of which ";
  const std::size_t ow = m.find(of_which);
  if (ow != std::string::npos) return size_at(ow + of_which.size(), m.find(" is free", ow));
  const std::size_t f = m.find(" free;");
  if (f != std::string::npos) {
    const std::size_t start = m.rfind("; ", f);
    if (start != std::string::npos) return size_at(start + 2, f);
  }
  return -1;
}

std::string failure_text(const std::string& phase, const std::string& rung, const Event& e,
                         const Failure& f) {
  std::string text =
      "out of memory in phase \"" + phase + "\" even at its smallest setting \"" + rung + "\"";
  if (f.requested >= 0) text += ": it tried to allocate " + format_size(f.requested);
  const std::int64_t free_then = free_bytes_at_failure(f.message);
  if (free_then >= 0) {
    text += f.requested >= 0 ? " when " : ": ";
    text += format_size(free_then) + " were free";
  }
  if (e.numbers.count("budget"))
    text += " (budget " + format_size(static_cast<std::int64_t>(e.number("budget"))) + ")";
  if (e.numbers.count("free"))
    text += "; after the attempt " + format_size(static_cast<std::int64_t>(e.number("free"))) +
            " free, " + format_size(static_cast<std::int64_t>(e.number("allocated"))) + " in use";
  text +=
      ". Lower the resolution or the frame count, or free device memory used by other "
      "programs. [" +
      f.message + "]";
  return text;
}

std::string host_failure_text(const std::string& phase, const std::string& rung, const Failure& f) {
  std::string text = "the computer ran out of memory (RAM) in phase \"" + phase + "\" at \"" +
                     rung + "\", even after releasing what it held for speed";
  if (f.requested >= 0) text += ": it tried to allocate " + format_size(double(f.requested));
  const HostMemory& h = f.host;
  if (h.available >= 0)
    text += (f.requested >= 0 ? " with " : ": ") + format_size(double(h.available)) +
            " available of " + format_size(double(h.total));
  return text + ". Close other programs, or lower the resolution or the frame count. [" +
         f.message + "]";
}

}  // namespace

const char* to_string(MemoryKind kind) {
  return kind == MemoryKind::kHost ? "host" : "device";
}

bool is_out_of_memory(const std::exception& e, std::string* message, MemoryKind* kind) {
  std::string text;
  MemoryKind k = MemoryKind::kDevice;
  if (const auto* host = dynamic_cast<const HostMemoryExhausted*>(&e)) {
    text = host->what();
    k = MemoryKind::kHost;
  } else if (const auto* oom = dynamic_cast<const c10::OutOfMemoryError*>(&e)) {
    text = oom->what_without_backtrace();
    if (message_says_host(text)) k = MemoryKind::kHost;
  } else if (const auto* error = dynamic_cast<const c10::Error*>(&e)) {
    text = error->what_without_backtrace();
    if (!message_says_oom(text)) return false;
    if (message_says_host(text)) k = MemoryKind::kHost;
  } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
    text = "host out of memory (std::bad_alloc)";
    k = MemoryKind::kHost;
  } else {
    return false;
  }
  if (message) *message = first_line(text);
  if (kind) *kind = k;
  return true;
}

std::int64_t requested_bytes_from_message(const std::string& message) {
  const std::string tried = "Tried to allocate ";
  const std::size_t at = message.find(tried);
  if (at == std::string::npos) return -1;
  // The simulated device gives the exact count: "Tried to allocate 1.0 MiB (1048576 bytes)".
  const std::size_t open = message.find('(', at);
  const std::size_t close = message.find(" bytes)", at);
  if (open != std::string::npos && close != std::string::npos && open < close) {
    const std::string digits = message.substr(open + 1, close - open - 1);
    if (!digits.empty() &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      try {
        return parse_size(digits);
      } catch (const Error&) {
      }
    }
  }
  // CUDA: "Tried to allocate 20.00 MiB (GPU 0; ...)", "Tried to allocate 512 bytes".
  std::size_t i = at + tried.size();
  std::string number, unit;
  while (i < message.size() &&
         (std::isdigit(static_cast<unsigned char>(message[i])) || message[i] == '.'))
    number += message[i++];
  while (i < message.size() && message[i] == ' ') ++i;
  while (i < message.size() && std::isalpha(static_cast<unsigned char>(message[i])))
    unit += message[i++];
  if (unit == "bytes") unit = "B";
  try {
    return parse_size(number + unit);
  } catch (const Error&) {
    return -1;
  }
}

std::string rung_change_text(const std::string& from, const std::string& to) {
  // Share the words both names start and end with: "chunk 16" + "chunk 4" -> "chunk 16→4";
  // "resident 4, attention 64" + "resident 2, attention 64" -> "resident 4→2, attention 64".
  std::size_t common = 0;
  for (std::size_t i = 0; i < std::min(from.size(), to.size()) && from[i] == to[i]; ++i)
    if (from[i] == ' ') common = i + 1;
  const std::string a = from.substr(common), b = to.substr(common);
  std::size_t tail = 0;
  for (std::size_t i = 1; i <= std::min(a.size(), b.size()) && a[a.size() - i] == b[b.size() - i];
       ++i)
    if (a[a.size() - i] == ',' || a[a.size() - i] == ' ') tail = i;
  if (tail == a.size() || tail == b.size()) tail = 0;  // one name would vanish: keep them whole
  return from.substr(0, common) + a.substr(0, a.size() - tail) + "\xE2\x86\x92" +
         b.substr(0, b.size() - tail) + a.substr(a.size() - tail);
}

std::size_t run_with_oom_ladder(const std::string& phase, const std::vector<std::string>& rungs,
                                const std::function<void(std::size_t rung)>& attempt,
                                const std::function<void(const Event&)>& on_event,
                                const OomLadderHooks& hooks) {
  if (rungs.empty()) throw Error("OOM ladder of phase \"" + phase + "\" has no rungs");
  const auto emit = [&](const Event& e) {
    if (on_event) on_event(e);
  };
  bool retried = false;
  bool host_released = false;  // the host rung runs once a ladder
  MemoryKind last_kind = MemoryKind::kDevice;
  for (std::size_t rung = 0; rung < rungs.size(); ++rung) {
    bool out_of_memory = false;
    Failure failure;
    try {
      attempt(rung);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e, &failure.message, &failure.kind)) throw;
      out_of_memory = true;
      if (const auto* host = dynamic_cast<const HostMemoryExhausted*>(&e))
        failure.requested = host->requested();
      if (failure.kind == MemoryKind::kHost) failure.host = read_host_memory();
      // Nothing of the attempt survives here: its locals (the tensors it made) were destroyed
      // while the exception unwound, and the exception object holds only text, no tensors. The
      // cache is emptied below, outside this handler, once even the exception is gone.
    }
    if (!out_of_memory) {
      if (retried) {
        Event ok = oom_event(phase, rung, failure, hooks);
        ok.texts["memory"] = to_string(last_kind);
        ok.texts["action"] = rungs[rung];
        ok.texts["outcome"] = "ok";
        emit(ok);
      }
      return rung;
    }
    last_kind = failure.kind;
    if (failure.kind == MemoryKind::kHost) {
      Event e = oom_event(phase, rung, failure, hooks);
      if (!host_released && hooks.release_host_memory) {
        // The host rung: release, then the same setting again (a smaller one frees no RAM).
        hooks.release_host_memory();
        host_released = true;
        retried = true;
        e.texts["action"] = "host memory released, " + rungs[rung] + " again";
        e.texts["outcome"] = "retry";
        emit(e);
        --rung;  // unsigned wrap-around at 0 is defined; the loop's ++rung brings it back
        continue;
      }
      e.texts["action"] = rungs[rung] + " (host memory exhausted)";
      e.texts["outcome"] = "failed";
      emit(e);
      throw OutOfMemory(host_failure_text(phase, rungs[rung], failure));
    }
    failure.requested = requested_bytes_from_message(failure.message);
    if (hooks.empty_cache)
      hooks.empty_cache();
    else if (hooks.probe)
      hooks.probe->empty_cache();
    Event e = oom_event(phase, rung, failure, hooks);
    if (rung + 1 < rungs.size()) {
      e.texts["action"] = rung_change_text(rungs[rung], rungs[rung + 1]);
      e.texts["outcome"] = "retry";
      emit(e);
      retried = true;
      continue;
    }
    e.texts["action"] = rungs[rung] + " (no smaller setting)";
    e.texts["outcome"] = "failed";
    emit(e);
    throw OutOfMemory(failure_text(phase, rungs[rung], e, failure));
  }
  return rungs.size();  // not reached: the last rung returns or throws
}

}  // namespace framesmith::memory
