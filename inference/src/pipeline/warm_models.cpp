#include "pipeline/warm_models.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace framesmith::pipeline {
namespace {

std::int64_t half_of_host_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return std::int64_t(4) << 30;
  return static_cast<std::int64_t>(pages) * page / 2;
}

}  // namespace

std::shared_ptr<void> WarmModels::find_any(const std::string& kind, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_)
    if (e.kind == kind && e.key == key) {
      e.used = std::chrono::steady_clock::now();
      return e.object;
    }
  return nullptr;
}

bool WarmModels::keep(const std::string& kind, const std::string& key, std::shared_ptr<void> object,
                      const std::string& description, std::int64_t host_bytes,
                      std::int64_t mapped_bytes, std::size_t per_kind) {
  std::lock_guard<std::mutex> lock(mu_);
  if (budget_ < 0) budget_ = half_of_host_memory();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return e.kind == kind && e.key == key; }),
                 entries_.end());
  if (host_bytes > budget_) return false;
  // Another model of this kind (or dtype, or device) replaces the oldest of its kind.
  std::size_t same = 0;
  for (const Entry& e : entries_) same += e.kind == kind ? 1 : 0;
  while (same >= per_kind && same > 0) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->kind == kind && (oldest == entries_.end() || it->used < oldest->used)) oldest = it;
    entries_.erase(oldest);
    --same;
  }
  entries_.push_back({kind, key, description, std::move(object), host_bytes, mapped_bytes,
                      std::chrono::steady_clock::now()});
  trim_locked(&entries_.back());
  return true;
}

void WarmModels::trim_locked(const Entry* keep) {
  auto total = [&] {
    std::int64_t n = 0;
    for (const Entry& e : entries_) n += e.host_bytes;
    return n;
  };
  while (total() > budget_) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (&*it != keep && (oldest == entries_.end() || it->used < oldest->used)) oldest = it;
    if (oldest == entries_.end()) return;
    const bool before_keep = &*oldest < keep;
    entries_.erase(oldest);
    if (before_keep) --keep;  // the vector moved down past the erased entry
  }
}

std::vector<WarmModel> WarmModels::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WarmModel> out;
  const auto now = std::chrono::steady_clock::now();
  for (const Entry& e : entries_)
    if (e.host_bytes > 0 || e.mapped_bytes > 0)  // what holds no memory is not worth a line
      out.push_back({e.kind, e.description, e.host_bytes, e.mapped_bytes,
                     std::chrono::duration<double>(now - e.used).count()});
  return out;
}

void WarmModels::clear() {
  std::vector<Entry> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(entries_);
  }
  // Destroyed outside the lock: freeing a model can take a while.
}

void WarmModels::set_budget(std::int64_t host_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = host_bytes < 0 ? half_of_host_memory() : host_bytes;
  trim_locked(nullptr);
}

std::int64_t WarmModels::budget() const {
  std::lock_guard<std::mutex> lock(mu_);
  return budget_ < 0 ? half_of_host_memory() : budget_;
}

WarmModels& warm_registry() {
  static WarmModels registry;
  return registry;
}

std::int64_t converted_bytes(const io::TensorStore& store, at::ScalarType dtype) {
  std::int64_t n = 0;
  for (const std::string& name : store.names()) {
    const io::TensorInfo& info = store.info(name);
    if (io::storage_scalar(info.dtype, name) == dtype) continue;
    std::int64_t numel = 1;
    for (std::int64_t d : info.shape) numel *= d;
    n += numel * static_cast<std::int64_t>(c10::elementSize(dtype));
  }
  return n;
}

std::string content_key(const void* data, std::size_t bytes) {
  // FNV-1a, 64 bits: a cache key, not a security boundary (the size is part of the key too).
  std::uint64_t h = 1469598103934665603ull;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%016llx-%zu", static_cast<unsigned long long>(h), bytes);
  return buf;
}

}  // namespace framesmith::pipeline
