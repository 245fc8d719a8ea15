#include "memory/device_probe.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "memory/simulated_device.h"

#if FRAMESMITH_HAS_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace framesmith::memory {

namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

class SimulatedProbe final : public MemoryProbe {
 public:
  std::string name() const override { return "simulated"; }
  MemorySnapshot snapshot() const override {
    const SimulatedDeviceStats st = simulated_device::stats();
    MemorySnapshot s;
    s.allocated = s.reserved = s.active = s.device_used = st.allocated;
    s.peak = st.peak;
    s.total = s.budget = st.budget;
    s.num_ooms = st.num_ooms;
    return s;
  }
  void empty_cache() override {}  // nothing is cached: frees go straight back
  void reset_peak() override { simulated_device::reset_peak(); }
};

#if FRAMESMITH_HAS_CUDA
class CudaProbe final : public MemoryProbe {
 public:
  CudaProbe(int device, std::int64_t budget) : device_(device), budget_(budget) {}
  std::string name() const override { return "cuda:" + std::to_string(device_); }

  MemorySnapshot snapshot() const override {
    const compat::CudaAllocatorStats st = compat::cuda_allocator_stats(device_);
    MemorySnapshot s;
    s.allocated = st.allocated;
    s.reserved = st.reserved;
    s.active = st.active;
    s.peak = st.peak_allocated;
    s.num_ooms = st.num_ooms;
    s.num_retries = st.num_alloc_retries;
    std::size_t free = 0, total = 0;
    {
      // The sampler runs on its own thread: make this device current there.
      c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
      if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the error; report the device as unknown
        free = total = 0;
      }
    }
    s.total = static_cast<std::int64_t>(total);
    s.device_used = static_cast<std::int64_t>(total - free);
    s.budget = budget_ > 0 && (s.total == 0 || budget_ < s.total) ? budget_ : s.total;
    return s;
  }
  void empty_cache() override { compat::cuda_empty_cache(); }
  void reset_peak() override { compat::cuda_reset_peak_stats(device_); }

 private:
  int device_;
  std::int64_t budget_;
};
#endif

[[noreturn]] void bad_size(const std::string& text, const std::string& why) {
  throw Error("bad size \"" + text + "\": " + why +
              " (expected a number with an optional unit B, KiB, MiB, GiB, TiB (= K, M, G, T) or "
              "KB, MB, GB, TB (powers of 1000), e.g. \"6GiB\", \"512MiB\", \"50331648\")");
}

// Multiplier of a lower-cased unit, 0 if unknown.
std::int64_t unit_multiplier(const std::string& unit) {
  const std::pair<const char*, std::int64_t> units[] = {
      {"", 1},
      {"b", 1},
      {"k", 1LL << 10},
      {"kib", 1LL << 10},
      {"m", 1LL << 20},
      {"mib", 1LL << 20},
      {"g", 1LL << 30},
      {"gib", 1LL << 30},
      {"t", 1LL << 40},
      {"tib", 1LL << 40},
      {"kb", 1000LL},
      {"mb", 1000LL * 1000},
      {"gb", 1000LL * 1000 * 1000},
      {"tb", 1000LL * 1000 * 1000 * 1000},
  };
  for (const auto& [name, mult] : units)
    if (unit == name) return mult;
  return 0;
}
}  // namespace

std::int64_t free_bytes(const MemorySnapshot& s) {
  if (s.total <= 0 && s.budget <= 0) return -1;  // unknown
  const std::int64_t cached = std::max<std::int64_t>(0, s.reserved - s.allocated);
  const std::int64_t device_free = s.total > 0 ? s.total - s.device_used + cached : kMax;
  const std::int64_t budget_left = s.budget > 0 ? s.budget - s.allocated : kMax;
  return std::max<std::int64_t>(0, std::min(device_free, budget_left));
}

std::unique_ptr<MemoryProbe> make_simulated_probe() {
  return std::make_unique<SimulatedProbe>();
}

bool cuda_probe_available() {
  return FRAMESMITH_HAS_CUDA != 0;
}

std::unique_ptr<MemoryProbe> make_cuda_probe(int device_index, std::int64_t budget_bytes) {
#if FRAMESMITH_HAS_CUDA
  if (device_index < 0) throw Error("bad CUDA device index " + std::to_string(device_index));
  return std::make_unique<CudaProbe>(device_index, budget_bytes);
#else
  throw Error("this LibTorch (" + std::string(compat::torch_version_string()) +
              ") was built without CUDA: no CUDA memory probe for device " +
              std::to_string(device_index));
#endif
}

std::int64_t parse_size(const std::string& text) {
  std::size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  std::size_t i = b;
  std::int64_t whole = 0;
  bool digits = false;
  for (; i < e && std::isdigit(static_cast<unsigned char>(text[i])); ++i, digits = true) {
    if (whole > (kMax - 9) / 10) bad_size(text, "too large");
    whole = whole * 10 + (text[i] - '0');
  }
  double fraction = 0.0;
  bool has_fraction = false;
  if (i < e && text[i] == '.') {
    double scale = 0.1;
    for (++i; i < e && std::isdigit(static_cast<unsigned char>(text[i])); ++i, scale /= 10) {
      fraction += (text[i] - '0') * scale;
      has_fraction = digits = true;
    }
  }
  if (!digits) bad_size(text, "no number");
  while (i < e && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  const std::size_t unit_start = i;
  std::string unit;
  for (; i < e; ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  const std::int64_t mult = unit_multiplier(unit);
  if (mult == 0) bad_size(text, "unknown unit \"" + text.substr(unit_start, e - unit_start) + "\"");
  if (mult == 1 && has_fraction && fraction > 0) bad_size(text, "a fraction of a byte");
  if (whole > kMax / mult) bad_size(text, "too large");
  const double extra = std::floor(fraction * static_cast<double>(mult));
  if (static_cast<double>(whole * mult) + extra >= 9.2e18) bad_size(text, "too large");
  return whole * mult + static_cast<std::int64_t>(extra);
}

std::string format_size(std::int64_t bytes) {
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  const double magnitude = std::abs(static_cast<double>(bytes));
  if (magnitude < 1024.0) return std::to_string(bytes) + " B";
  double value = magnitude / 1024.0;
  int u = 0;
  // Move up a unit before the rounded value would read "1024.0".
  while (value >= 1023.95 && u < 4) {
    value /= 1024.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s%.1f %s", bytes < 0 ? "-" : "", value, units[u]);
  return buf;
}

}  // namespace framesmith::memory
