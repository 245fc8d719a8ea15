#include "memory/host_memory.h"

#include <fstream>
#include <sstream>

#include "framesmith/units.h"

namespace framesmith::memory {

namespace {

std::string read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::string();
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "Key:   12345 kB" -> bytes; -1 if the key is missing or its value malformed.
std::int64_t kib_field(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.compare(0, key.size() + 1, key + ":") != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    long long value = -1;
    std::string unit;
    if (!(fields >> value) || value < 0) return -1;
    fields >> unit;
    return unit == "kB" ? std::int64_t(value) * 1024 : std::int64_t(value);
  }
  return -1;
}

}  // namespace

HostMemory parse_host_memory(const std::string& meminfo, const std::string& self_status) {
  HostMemory h;
  h.total = kib_field(meminfo, "MemTotal");
  h.available = kib_field(meminfo, "MemAvailable");
  h.rss = kib_field(self_status, "VmRSS");
  h.rss_anon = kib_field(self_status, "RssAnon");
  h.peak_rss = kib_field(self_status, "VmHWM");
  return h;
}

HostMemory read_host_memory() {
  return parse_host_memory(read_text("/proc/meminfo"), read_text("/proc/self/status"));
}

void require_host_memory(std::int64_t bytes, const std::string& what,
                         const HostMemoryReader& reader) {
  const HostMemory h = reader ? reader() : read_host_memory();
  if (h.available < 0 || bytes <= h.available) return;
  throw HostMemoryExhausted(what + " needs about " + format_size(double(bytes)) +
                                " of RAM, but only " + format_size(double(h.available)) +
                                " are available (of " + format_size(double(h.total)) +
                                "). Close other programs, or use a smaller model or setting.",
                            bytes, h.available);
}

}  // namespace framesmith::memory
