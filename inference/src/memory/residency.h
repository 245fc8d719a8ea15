// Where model weights live during a job, as objects rather than scattered calls:
//  - ComputeDevice: the job's device and how tensors get there (CUDA, the simulated budget device
//    of memory/simulated_device.h, or the plain CPU where nothing moves);
//  - BlockStreamer: a model made of numbered units (the transformer's modules: embedders, refiner,
//    blocks, output; the LLaMA's embedding, layers and norm) whose first units are kept resident
//    while memory allows and whose other units are copied in at use, with the next one prefetched
//    (CUDA: a side stream from pinned memory; elsewhere the same code path, synchronously);
//  - WeightReservation: on the simulated device, stands for weights that live in model objects the
//    governor cannot move (their bytes are held on the device so that budgets stay honest);
//  - ResidencyPolicy: FramePack's two regimes. High-VRAM (free memory above 60 GB): everything
//    resident. Low-VRAM: the text encoder streamed, CLIP / VAE / SigLIP loaded whole one at a
//    time, the transformer loaded module by module until only the preserved memory is left (the
//    rest streamed per module), and offloaded before decoding until 8 GB are free.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framesmith/events.h"
#include "models/weight_form.h"

namespace framesmith {
class PackedTransformer;
struct TransformerConfig;
}  // namespace framesmith

namespace framesmith::memory {

class MemoryProbe;
class OnDeviceScope;

constexpr std::int64_t kGiB = std::int64_t{1} << 30;
constexpr std::int64_t kMiB = std::int64_t{1} << 20;

struct ComputeDevice {
  at::Device device = at::kCPU;
  bool simulated = false;  // the simulated budget device (device is then the CPU)

  // There is a device memory separate from the host's (CUDA or simulated).
  bool has_device_memory() const { return simulated || !device.is_cpu(); }
  bool is_cuda() const { return device.is_cuda(); }
  std::string name() const;  // "cuda:0", "simulated", "cpu"

  // A device copy of a host tensor (simulated: counted against the budget; CPU: the tensor itself).
  at::Tensor to_device(const at::Tensor& host) const;
  // A device copy of a stored host weight in its compute form (`form`), converted on the way:
  // the host never holds a converted copy. Simulated: counted against the budget. CUDA: the
  // stored bytes go over, the conversion runs on the device. CPU: the tensor itself when it
  // already is in its compute form, else a converted copy.
  at::Tensor to_device(const at::Tensor& host, const WeightForm& form) const;
  // A host copy of a device tensor (simulated: a clone outside the budget; CPU: the tensor itself).
  at::Tensor to_host(const at::Tensor& t) const;
  // An uninitialised host tensor (simulated: allocated outside the budget).
  at::Tensor empty_host(at::IntArrayRef sizes, at::ScalarType dtype) const;
};

// Marks device work for the duration of a scope: on the simulated device, allocations made inside
// count against the budget; elsewhere it does nothing.
class DeviceWork {
 public:
  explicit DeviceWork(const ComputeDevice& device);
  ~DeviceWork();
  DeviceWork(const DeviceWork&) = delete;
  DeviceWork& operator=(const DeviceWork&) = delete;

 private:
  std::unique_ptr<OnDeviceScope> scope_;
};

// Bytes of a tensor's elements.
std::int64_t tensor_bytes(const at::Tensor& t);

// On the simulated device: `bytes` held on the device while alive, standing for weights of a model
// object whose tensors the governor cannot reach. Elsewhere: nothing (the model object was loaded
// onto the device itself).
class WeightReservation {
 public:
  WeightReservation() = default;
  WeightReservation(const ComputeDevice& device, std::int64_t bytes);
  std::int64_t bytes() const { return bytes_; }
  void release();

 private:
  at::Tensor held_;
  std::int64_t bytes_ = 0;
};

// Moves the blocks of a model between host and device. The host tensors the model was built with
// are kept; the device holds copies, so offloading is dropping the copy (weights never change).
// Host tensors may be stored weights (memory-mapped, in the checkpoint's dtype): `form_of` then
// says each one's compute form, and every device copy is made in it, converted at placement.
class BlockStreamer {
 public:
  using TensorRefs = std::vector<std::pair<std::string, at::Tensor*>>;
  using TensorsOf = std::function<TensorRefs(int block)>;
  // The compute form of the tensor named `key` in tensors_of's list.
  using FormOf = std::function<WeightForm(const std::string& key)>;

  // The pointers `tensors_of(i)` returns must stay valid for this object's lifetime. Without
  // `form_of`, tensors are copied as they are (the model was converted at load).
  BlockStreamer(std::string model_name, int num_blocks, TensorsOf tensors_of, ComputeDevice device,
                FormOf form_of = nullptr);
  ~BlockStreamer();  // every block back on the host; never throws
  BlockStreamer(const BlockStreamer&) = delete;
  BlockStreamer& operator=(const BlockStreamer&) = delete;

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  std::int64_t block_bytes(int i) const;
  std::int64_t total_bytes() const;
  int resident_count() const;
  std::int64_t resident_bytes() const;

  // FramePack's move_model_to_device_with_memory_preservation: blocks, in order, become resident
  // while the free memory after the move stays at or above `preserved`, at most `max_count` of
  // them (blocks beyond it go back to the host). Returns how many are resident.
  int load_while_free_above(std::int64_t preserved, const MemoryProbe& probe,
                            int max_count = 1 << 30);
  // The first `count` blocks resident, all others on the host (streamed at use).
  void set_resident_count(int count);
  // FramePack's offload_model_from_device_for_memory_preservation: resident blocks go back to the
  // host, last first, until at least `target` bytes are free (or none is left).
  void offload_until_free(std::int64_t target, const MemoryProbe& probe);
  void offload_all() { set_resident_count(0); }

  // The model's hook: block `i` is about to run. Streams it in (or waits for its prefetch), drops
  // the previous streamed block and prefetches the next non-resident one. Throws Cancelled when
  // the cancel flag is set (a forward can be stopped between blocks).
  void before_block(int i);
  // Drops every streamed (non-resident) copy, e.g. after a forward or when it failed.
  void release_streamed();

  bool prefetch = true;
  // CUDA: stream through a small ring of page-locked staging buffers (kStagingSlots, each the
  // size of the largest unit), so that copies run asynchronously. Worth it for what streams every
  // step (the transformer); not for a model used once a job (the LLaMA: pageable copies).
  bool pin_host_memory = true;
  static constexpr int kStagingSlots = 3;  // the unit running, the one prefetched, one spare
  // Page-locked bytes the staging ring holds (CUDA; 0 elsewhere and before the first streaming).
  std::int64_t pinned_bytes() const;
  const std::atomic<bool>* cancel = nullptr;
  std::int64_t streamed_bytes_total() const { return streamed_bytes_; }
  std::int64_t streamed_blocks_total() const { return streamed_count_; }
  // Host bytes of the stored tensors (e.g. bf16 or float8 in the mapped file), where
  // block_bytes and total_bytes are those of the device copies (the compute dtype).
  std::int64_t host_bytes() const;
  // The most bytes of streamed copies held at once since reset_streamed_peak() (the current
  // block and the prefetched next one): what a measured peak holds besides activations.
  std::int64_t streamed_peak_bytes() const { return streamed_peak_; }
  void reset_streamed_peak() { streamed_peak_ = streamed_now_; }

 private:
  enum class Where { kHost, kResident, kStreamed };
  struct Block {
    TensorRefs refs;
    std::vector<at::Tensor> host;   // the original (host) tensors, in refs order
    std::vector<WeightForm> forms;  // their compute forms, in refs order
    Where where = Where::kHost;
    std::int64_t bytes = 0;       // of the device copies (compute forms)
    std::int64_t host_bytes = 0;  // of the host tensors
    bool converts = false;        // some host tensor is not in its compute form
  };
  struct Prefetch;  // CUDA side-stream copy in flight (opaque: CUDA types stay in the .cpp)

  void copy_in(int i, Where as);
  bool copy_in_async(Block& b, int i, Where as);  // CUDA side-stream prefetch; false: not taken
  std::int64_t staging_slot_bytes() const;        // the largest unit's stored bytes, aligned
  void count_streamed(std::int64_t bytes);
  void drop(int i);
  void wait_prefetch(int i);

  std::string name_;
  std::vector<Block> blocks_;
  ComputeDevice device_;
  std::unique_ptr<Prefetch> prefetch_;
  std::int64_t streamed_bytes_ = 0, streamed_count_ = 0;
  std::int64_t streamed_now_ = 0, streamed_peak_ = 0;
};

// The transformer under a BlockStreamer whose units are the transformer's modules (embedders,
// refiner, blocks, output; PackedTransformer::module_tensors): installs the before_module hook
// and restores everything (weights on the host, hook removed) when destroyed.
class TransformerResidency {
 public:
  TransformerResidency(PackedTransformer& transformer, const ComputeDevice& device);
  ~TransformerResidency();
  TransformerResidency(const TransformerResidency&) = delete;
  TransformerResidency& operator=(const TransformerResidency&) = delete;

  BlockStreamer& modules() { return *streamer_; }
  const BlockStreamer& modules() const { return *streamer_; }
  PackedTransformer& model() { return transformer_; }
  // Modules resident when the first `blocks` blocks are (with every module in front of them).
  int modules_for_blocks(int blocks) const;
  // Transformer blocks among the resident modules.
  int resident_blocks() const;
  int num_blocks() const;
  // "17 of 47 modules resident (12 of 40 blocks)".
  std::string describe() const;
  // Called by the step wrapper after each model call (also after a failed one).
  void end_forward() { streamer_->release_streamed(); }

 private:
  PackedTransformer& transformer_;
  std::unique_ptr<BlockStreamer> streamer_;
};

// FramePack's memory regimes.
struct ResidencyLimits {
  std::int64_t high_vram_threshold = 60 * kGiB;  // free memory above this: everything resident
  std::int64_t preserved_memory = 6 * kGiB;      // left free when loading the transformer
  std::int64_t decode_free_target = 8 * kGiB;    // freed (by offloading) before decoding
};

class ResidencyPolicy {
 public:
  virtual ~ResidencyPolicy() = default;
  virtual std::string name() const = 0;  // "high-vram", "low-vram"
  // The LLaMA text encoder is streamed layer by layer (else loaded whole).
  virtual bool stream_text_encoder() const = 0;
  // Encoders and the VAE are unloaded after their phase (else kept).
  virtual bool unload_after_use() const = 0;
  // Before each section's sampling: place the transformer's modules, at most `max_resident` of
  // them resident (a limit from planning or an earlier out-of-memory). Returns an event text.
  virtual std::string prepare_sampling(TransformerResidency& t, const MemoryProbe& probe,
                                       int max_resident) = 0;
  // Before each decode: make room for the VAE. Returns an event text ("" = nothing done).
  virtual std::string prepare_decode(TransformerResidency& t, const MemoryProbe& probe) = 0;
  // One rung of the sampling OOM ladder: fewer resident modules. Returns false when none is left.
  virtual bool offload_more(TransformerResidency& t);
  // The policy to fall to when this one's placement runs out of memory (high-VRAM: low-VRAM, as
  // the probe's free memory can overstate what the allocator gives); null when none is left.
  virtual std::unique_ptr<ResidencyPolicy> fallback() const { return nullptr; }
  const ResidencyLimits& limits() const { return limits_; }

 protected:
  explicit ResidencyPolicy(ResidencyLimits limits) : limits_(limits) {}
  ResidencyLimits limits_;
};

std::unique_ptr<ResidencyPolicy> make_high_vram_policy(ResidencyLimits limits = {});
std::unique_ptr<ResidencyPolicy> make_low_vram_policy(ResidencyLimits limits = {});
// High-VRAM when `free_bytes` exceeds the threshold (FramePack: > 60 GB free), else low-VRAM.
std::unique_ptr<ResidencyPolicy> choose_residency_policy(std::int64_t free_bytes,
                                                         ResidencyLimits limits = {});

}  // namespace framesmith::memory
