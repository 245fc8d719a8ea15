#include "memory/simulated_device.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <mutex>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/units.h"
#include "memory/device_probe.h"
#include "memory/phase.h"

namespace framesmith::memory {

namespace {

constexpr std::int64_t kUnlimited = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t kMagic = 0x46534d454d534456ull;  // "FSMEMSDV": catches foreign frees

// Lives in the kSimulatedHeaderBytes in front of the data handed to LibTorch.
struct BlockHeader {
  std::uint64_t magic;
  std::int64_t size;
  std::int32_t placement;  // Placement: where the bytes were counted
};
static_assert(sizeof(BlockHeader) <= kSimulatedHeaderBytes, "header must fit in front of data");

// Counters: constant-initialised atomics, so frees during static destruction still work.
std::atomic<std::int64_t> g_allocated{0};
std::atomic<std::int64_t> g_peak{0};
std::atomic<std::int64_t> g_budget{kUnlimited};
std::atomic<std::int64_t> g_num_ooms{0};
std::atomic<std::int64_t> g_num_allocations{0};
std::atomic<std::int64_t> g_num_cache_flushes{0};
std::atomic<std::int64_t> g_host_allocated{0};
std::atomic<std::int64_t> g_unmarked{0};
std::atomic<std::int64_t> g_unmarked_peak{0};
thread_local Placement t_placement = Placement::kUnmarked;

// Fault injection: only looked at (under its mutex) while g_faults_armed is set.
std::atomic<bool> g_faults_armed{false};
struct FaultState {
  std::mutex mutex;
  std::int64_t countdown = 0;          // >0: the countdown-th device allocation from now fails
  std::int64_t larger_than = -1;       // >=0: the next device allocation above this fails
  std::string phase;                   // ... in this phase ("" = any)
  std::int64_t host_larger_than = -1;  // >=0: the next host allocation above this fails
};
FaultState& faults() {
  static FaultState* f = new FaultState();  // leaked: allocations may happen during exit
  return *f;
}

// Under f.mutex: whether any fault is still waiting (the allocator looks at the flag only).
void rearm(const FaultState& f) {
  g_faults_armed.store(f.countdown > 0 || f.larger_than >= 0 || f.host_larger_than >= 0,
                       std::memory_order_release);
}

void update_peak(std::atomic<std::int64_t>& peak, std::int64_t value) {
  std::int64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

[[noreturn]] void throw_oom(std::int64_t requested, const std::string& reason) {
  g_num_ooms.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t allocated = g_allocated.load(std::memory_order_relaxed);
  const std::int64_t budget = g_budget.load(std::memory_order_relaxed);
  const std::int64_t free = std::max<std::int64_t>(0, budget - allocated);
  // Same shape as CUDA's message, so the OOM ladder parses both the same way.
  std::string msg = "Simulated device out of memory. Tried to allocate " + format_size(requested) +
                    " (" + std::to_string(requested) + " bytes); " + format_size(free) + " (" +
                    std::to_string(free) + " bytes) free of " + format_size(budget) + " budget (" +
                    format_size(allocated) + " allocated)";
  const std::string phase = current_phase();
  if (!phase.empty()) msg += " in phase \"" + phase + "\"";
  if (!reason.empty()) msg += " [" + reason + "]";
  C10_THROW_ERROR(OutOfMemoryError, msg);
}

// Throws if an armed fault fires for this device allocation.
void check_faults(std::int64_t n) {
  std::string reason;
  {
    FaultState& f = faults();
    std::lock_guard<std::mutex> lock(f.mutex);
    if (f.countdown > 0 && --f.countdown == 0) reason = "injected fault: n-th allocation";
    if (reason.empty() && f.larger_than >= 0 && n > f.larger_than &&
        (f.phase.empty() || f.phase == current_phase())) {
      reason = "injected fault: allocation larger than " + std::to_string(f.larger_than);
      f.larger_than = -1;
    }
    rearm(f);
  }
  if (!reason.empty()) throw_oom(n, reason);
}

// As LibTorch's own CPU allocator says it (c10/core/impl/alloc_cpu.cpp), so that the ladder
// classifies the simulated host's exhaustion exactly as the real one.
[[noreturn]] void throw_host_oom(std::int64_t n, const std::string& reason) {
  g_num_ooms.fetch_add(1, std::memory_order_relaxed);
  C10_THROW_ERROR(Error, "DefaultCPUAllocator: not enough memory: you tried to allocate " +
                             std::to_string(n) + " bytes (simulated host out of memory" +
                             (reason.empty() ? "" : ", " + reason) + ")");
}

void check_host_faults(std::int64_t n) {
  FaultState& f = faults();
  bool fire = false;
  {
    std::lock_guard<std::mutex> lock(f.mutex);
    if (f.host_larger_than >= 0 && n > f.host_larger_than) {
      fire = true;
      f.host_larger_than = -1;
    }
    rearm(f);
  }
  if (fire) throw_host_oom(n, "injected fault");
}

// Counts n device bytes, or throws OutOfMemoryError if they do not fit. The compare-exchange
// makes the check and the add one step, so concurrent allocations can never overshoot the budget.
void reserve_device_bytes(std::int64_t n) {
  if (g_faults_armed.load(std::memory_order_acquire)) check_faults(n);
  const std::int64_t budget = g_budget.load(std::memory_order_relaxed);
  std::int64_t current = g_allocated.load(std::memory_order_relaxed);
  do {
    if (n > budget - current) throw_oom(n, "");
  } while (!g_allocated.compare_exchange_weak(current, current + n, std::memory_order_relaxed));
  update_peak(g_peak, current + n);
  g_num_allocations.fetch_add(1, std::memory_order_relaxed);
}

void* aligned_malloc(std::size_t bytes) {
#ifdef _WIN32
  return _aligned_malloc(bytes, kSimulatedHeaderBytes);
#else
  void* p = nullptr;
  return posix_memalign(&p, kSimulatedHeaderBytes, bytes) == 0 ? p : nullptr;
#endif
}

void aligned_free(void* p) {
#ifdef _WIN32
  _aligned_free(p);
#else
  std::free(p);
#endif
}

// The one deleter of every block (also LibTorch's raw_deleter): data is the pointer handed out.
void delete_block(void* data) {
  if (data == nullptr) return;
  auto* header = reinterpret_cast<BlockHeader*>(static_cast<char*>(data) - kSimulatedHeaderBytes);
  if (header->magic != kMagic) {
    // Not ours: freeing it would corrupt the heap. This is a programming error; fail loudly.
    std::abort();
  }
  header->magic = 0;
  const auto placement = static_cast<Placement>(header->placement);
  auto& counter = placement == Placement::kHost ? g_host_allocated : g_allocated;
  counter.fetch_sub(header->size, std::memory_order_relaxed);
  if (placement == Placement::kUnmarked)
    g_unmarked.fetch_sub(header->size, std::memory_order_relaxed);
  aligned_free(header);
}

class SimulatedAllocator final : public compat::AllocatorBase {
 public:
  // MKLDNN's raw_allocate/raw_deallocate need this (and context == data).
  c10::DeleterFnPtr raw_deleter() const override { return &delete_block; }

 protected:
  c10::DataPtr allocate_bytes(std::size_t n) const override {
    if (n > static_cast<std::size_t>(kUnlimited) - kSimulatedHeaderBytes)
      throw_oom(kUnlimited, "request too large");
    const auto bytes = static_cast<std::int64_t>(n);
    const Placement placement = t_placement;
    const bool on_device = placement != Placement::kHost;
    if (on_device) {
      reserve_device_bytes(bytes);
    } else if (g_faults_armed.load(std::memory_order_acquire)) {
      check_host_faults(bytes);
    }
    void* base = aligned_malloc(n + kSimulatedHeaderBytes);
    if (base == nullptr) {
      if (on_device) g_allocated.fetch_sub(bytes, std::memory_order_relaxed);
      throw_host_oom(bytes, "");
    }
    auto* header = static_cast<BlockHeader*>(base);
    header->magic = kMagic;
    header->size = bytes;
    header->placement = static_cast<std::int32_t>(placement);
    if (!on_device) g_host_allocated.fetch_add(bytes, std::memory_order_relaxed);
    if (placement == Placement::kUnmarked)
      update_peak(g_unmarked_peak, g_unmarked.fetch_add(bytes, std::memory_order_relaxed) + bytes);
    void* data = static_cast<char*>(base) + kSimulatedHeaderBytes;
    return {data, data, &delete_block, c10::Device(c10::DeviceType::CPU)};
  }
};

SimulatedAllocator& allocator_instance() {
  // Leaked on purpose: c10 keeps a raw pointer, and tensors may be freed during exit.
  static SimulatedAllocator* a = new SimulatedAllocator();
  return *a;
}

std::mutex g_install_mutex;
bool g_installed = false;

}  // namespace

namespace simulated_device {

bool installed() {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  return g_installed;
}

SimulatedDeviceStats stats() {
  SimulatedDeviceStats s;
  s.allocated = g_allocated.load(std::memory_order_relaxed);
  s.peak = g_peak.load(std::memory_order_relaxed);
  s.budget = g_budget.load(std::memory_order_relaxed);
  s.num_ooms = g_num_ooms.load(std::memory_order_relaxed);
  s.num_allocations = g_num_allocations.load(std::memory_order_relaxed);
  s.num_cache_flushes = g_num_cache_flushes.load(std::memory_order_relaxed);
  s.host_allocated = g_host_allocated.load(std::memory_order_relaxed);
  s.unmarked = g_unmarked.load(std::memory_order_relaxed);
  s.unmarked_peak = g_unmarked_peak.load(std::memory_order_relaxed);
  return s;
}

void set_budget(std::int64_t bytes) {
  if (bytes <= 0)
    throw Error("simulated device budget must be positive, got " + std::to_string(bytes));
  g_budget.store(bytes, std::memory_order_relaxed);
}

void reset_peak() {
  g_peak.store(g_allocated.load(std::memory_order_relaxed));
  g_unmarked_peak.store(g_unmarked.load(std::memory_order_relaxed));
}

void count_cache_flush() {
  g_num_cache_flushes.fetch_add(1, std::memory_order_relaxed);
}

void reset_counters() {
  g_num_ooms.store(0);
  g_num_allocations.store(0);
  g_num_cache_flushes.store(0);
  reset_peak();
}

void fail_nth_allocation(std::int64_t n) {
  if (n < 1) throw Error("fail_nth_allocation: n must be >= 1, got " + std::to_string(n));
  FaultState& f = faults();
  std::lock_guard<std::mutex> lock(f.mutex);
  f.countdown = n;
  g_faults_armed.store(true, std::memory_order_release);
}

void fail_next_allocation_larger_than(std::int64_t bytes, const std::string& phase) {
  if (bytes < 0) throw Error("fail_next_allocation_larger_than: negative size");
  FaultState& f = faults();
  std::lock_guard<std::mutex> lock(f.mutex);
  f.larger_than = bytes;
  f.phase = phase;
  g_faults_armed.store(true, std::memory_order_release);
}

void fail_next_host_allocation_larger_than(std::int64_t bytes) {
  if (bytes < 0) throw Error("fail_next_host_allocation_larger_than: negative size");
  FaultState& f = faults();
  std::lock_guard<std::mutex> lock(f.mutex);
  f.host_larger_than = bytes;
  g_faults_armed.store(true, std::memory_order_release);
}

void clear_faults() {
  FaultState& f = faults();
  std::lock_guard<std::mutex> lock(f.mutex);
  f.countdown = 0;
  f.larger_than = -1;
  f.host_larger_than = -1;
  f.phase.clear();
  g_faults_armed.store(false, std::memory_order_release);
}

at::Tensor copy_to_device(const at::Tensor& host) {
  OnDeviceScope on_device;
  return host.clone();
}

}  // namespace simulated_device

SimulatedDeviceScope::SimulatedDeviceScope(std::int64_t budget_bytes) {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  if (g_installed) throw Error("a SimulatedDeviceScope is already active (they do not nest)");
  simulated_device::set_budget(budget_bytes);
  c10::Allocator* previous = c10::GetCPUAllocator();
  c10::SetCPUAllocator(&allocator_instance(), kSimulatedAllocatorPriority);
  if (c10::GetCPUAllocator() != &allocator_instance())
    throw Error("cannot install the simulated device: a CPU allocator with priority above " +
                std::to_string(kSimulatedAllocatorPriority) + " is installed");
  previous_ = previous;
  simulated_device::clear_faults();
  simulated_device::reset_counters();
  g_installed = true;
}

SimulatedDeviceScope::~SimulatedDeviceScope() {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  // Same priority: c10 only lets an equal or higher priority replace the current allocator.
  c10::SetCPUAllocator(static_cast<c10::Allocator*>(previous_), kSimulatedAllocatorPriority);
  simulated_device::clear_faults();
  g_installed = false;
}

Placement current_placement() {
  return t_placement;
}

OnDeviceScope::OnDeviceScope() : previous_(t_placement) {
  t_placement = Placement::kDevice;
}
OnDeviceScope::~OnDeviceScope() {
  t_placement = previous_;
}

HostScope::HostScope() : previous_(t_placement) {
  t_placement = Placement::kHost;
}
HostScope::~HostScope() {
  t_placement = previous_;
}

}  // namespace framesmith::memory
