// What the studio keeps between jobs: loaded models (transformer, VAE, text encoders) and the
// results that depend only on the model and the input (image embedding, start latent), in one
// registry with a host-memory budget. One entry per kind of model: asking for another model or
// dtype replaces it; past the budget the least recently used entries go. Entries are shared:
// a job holds what it uses, so unloading (or evicting) never pulls a model from under a job.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"
#include "io/safetensors.h"

namespace framesmith::pipeline {

class WarmModels {
 public:
  // The object kept under (kind, key), or null. Counts as a use.
  template <class T>
  std::shared_ptr<T> find(const std::string& kind, const std::string& key) {
    return std::static_pointer_cast<T>(find_any(kind, key));
  }
  // Keeps `object`; `host_bytes` is what it holds in host memory beyond mapped files (what the
  // budget counts), `mapped_bytes` the mapped file pages it reads. `per_kind`: how many entries
  // of this kind may stay (models 1, per-input results a few). False when the object alone
  // exceeds the budget (then it is not kept).
  bool keep(const std::string& kind, const std::string& key, std::shared_ptr<void> object,
            const std::string& description, std::int64_t host_bytes, std::int64_t mapped_bytes,
            std::size_t per_kind = 1);
  // Entries that hold memory (host or mapped), oldest first.
  std::vector<WarmModel> list() const;
  void clear();
  void set_budget(std::int64_t host_bytes);
  std::int64_t budget() const;

 private:
  struct Entry {
    std::string kind, key, description;
    std::shared_ptr<void> object;
    std::int64_t host_bytes = 0, mapped_bytes = 0;
    std::chrono::steady_clock::time_point used;
  };
  std::shared_ptr<void> find_any(const std::string& kind, const std::string& key);
  void trim_locked(const Entry* keep);

  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::int64_t budget_ = -1;  // -1: half of the host's memory (read at first use)
};

WarmModels& warm_registry();

// Host bytes a model loaded (converted at load) from `store` into `dtype` holds beyond the
// mapped file: tensors of another dtype are copies, views of the mapping only page cache.
std::int64_t converted_bytes(const io::TensorStore& store, at::ScalarType dtype);

// A short digest of a tensor's bytes, for keys of per-input results (the cropped picture).
std::string content_key(const void* data, std::size_t bytes);

}  // namespace framesmith::pipeline
