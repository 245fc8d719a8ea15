#include "memory/residency.h"

#include <algorithm>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/units.h"
#include "memory/device_probe.h"
#include "memory/oom_retry.h"
#include "memory/simulated_device.h"
#include "models/transformer_packed.h"

#if FRAMESMITH_HAS_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace framesmith::memory {

// ---------------------------------------------------------------------------------------------
// ComputeDevice

std::string ComputeDevice::name() const {
  if (simulated) return "simulated";
  return device.str();
}

at::Tensor ComputeDevice::to_device(const at::Tensor& host) const {
  if (simulated) return simulated_device::copy_to_device(host);
  if (device.is_cpu()) return host;
  return host.to(device);
}

at::Tensor ComputeDevice::to_host(const at::Tensor& t) const {
  if (simulated) {
    HostScope host;
    return t.clone();
  }
  if (device.is_cpu()) return t;
  return t.to(at::kCPU);
}

at::Tensor ComputeDevice::empty_host(at::IntArrayRef sizes, at::ScalarType dtype) const {
  HostScope host;  // harmless outside the simulation
  return at::empty(sizes, at::TensorOptions().dtype(dtype));
}

DeviceWork::DeviceWork(const ComputeDevice& device) {
  if (device.simulated) scope_ = std::make_unique<OnDeviceScope>();
}
DeviceWork::~DeviceWork() = default;

std::int64_t tensor_bytes(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<std::int64_t>(t.element_size()) : 0;
}

// ---------------------------------------------------------------------------------------------
// WeightReservation

WeightReservation::WeightReservation(const ComputeDevice& device, std::int64_t bytes)
    : bytes_(bytes) {
  if (!device.simulated || bytes <= 0) return;
  OnDeviceScope on_device;
  held_ = at::empty({bytes}, at::TensorOptions().dtype(at::kByte));
}

void WeightReservation::release() {
  held_ = at::Tensor();
  bytes_ = 0;
}

// ---------------------------------------------------------------------------------------------
// BlockStreamer

struct BlockStreamer::Prefetch {
  int block = -1;  // the block whose copy is in flight (-1: none)
#if FRAMESMITH_HAS_CUDA
  c10::optional<c10::cuda::CUDAStream> stream;  // CUDA only: the side stream copies run on
  at::cuda::CUDAEvent done;                     // recorded on it after the last copy
#endif
};

BlockStreamer::BlockStreamer(std::string model_name, int num_blocks, TensorsOf tensors_of,
                             ComputeDevice device)
    : name_(std::move(model_name)), device_(device) {
  blocks_.resize(static_cast<std::size_t>(std::max(0, num_blocks)));
  for (int i = 0; i < num_blocks; ++i) {
    Block& b = blocks_[static_cast<std::size_t>(i)];
    b.refs = tensors_of(i);
    for (auto& [key, ptr] : b.refs) {
      at::Tensor t = *ptr;
      // A model loaded onto the device gives its blocks back to the host here; on CUDA host copies
      // are pinned so that streaming can copy asynchronously.
      if (!t.device().is_cpu()) t = t.to(at::kCPU);
#if FRAMESMITH_HAS_CUDA
      if (device_.is_cuda()) t = t.pin_memory();
#endif
      *ptr = t;
      b.host.push_back(t);
      b.bytes += tensor_bytes(t);
    }
  }
  prefetch_ = std::make_unique<Prefetch>();
#if FRAMESMITH_HAS_CUDA
  if (device_.is_cuda())
    prefetch_->stream = c10::cuda::getStreamFromPool(false, device_.device.index());
#endif
}

BlockStreamer::~BlockStreamer() {
  try {
    wait_prefetch(-1);
    for (int i = 0; i < num_blocks(); ++i) drop(i);
  } catch (...) {
  }
}

std::int64_t BlockStreamer::block_bytes(int i) const {
  return blocks_.at(static_cast<std::size_t>(i)).bytes;
}

std::int64_t BlockStreamer::total_bytes() const {
  std::int64_t n = 0;
  for (const Block& b : blocks_) n += b.bytes;
  return n;
}

int BlockStreamer::resident_count() const {
  int n = 0;
  for (const Block& b : blocks_) n += b.where == Where::kResident;
  return n;
}

std::int64_t BlockStreamer::resident_bytes() const {
  std::int64_t n = 0;
  for (const Block& b : blocks_)
    if (b.where == Where::kResident) n += b.bytes;
  return n;
}

void BlockStreamer::copy_in(int i, Where as) {
  Block& b = blocks_[static_cast<std::size_t>(i)];
  if (b.where != Where::kHost) {
    b.where = as == Where::kResident ? Where::kResident : b.where;
    return;
  }
  if (!device_.has_device_memory()) {  // plain CPU: the host tensors are what runs
    b.where = as;
    return;
  }
#if FRAMESMITH_HAS_CUDA
  if (device_.is_cuda() && as == Where::kStreamed && prefetch) {
    // Allocated on the compute stream (so that its later frees are ordered with the kernels that
    // use the block), filled on the side stream after the compute stream's pending work.
    const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(device_.device.index());
    std::vector<at::Tensor> copies;
    for (const at::Tensor& h : b.host)
      copies.push_back(at::empty_like(h, h.options().device(device_.device).pinned_memory(false)));
    at::cuda::CUDAEvent ready;
    ready.record(main);
    {
      c10::cuda::CUDAStreamGuard guard(*prefetch_->stream);
      ready.block(*prefetch_->stream);
      for (std::size_t k = 0; k < copies.size(); ++k) copies[k].copy_(b.host[k], true);
      prefetch_->done.record(*prefetch_->stream);
    }
    prefetch_->block = i;
    for (std::size_t k = 0; k < copies.size(); ++k) *b.refs[k].second = copies[k];
    b.where = as;
    streamed_bytes_ += b.bytes;
    ++streamed_count_;
    return;
  }
#endif
  std::vector<at::Tensor> copies;
  for (const at::Tensor& h : b.host) copies.push_back(device_.to_device(h));
  for (std::size_t k = 0; k < copies.size(); ++k) *b.refs[k].second = copies[k];
  b.where = as;
  if (as == Where::kStreamed) {
    streamed_bytes_ += b.bytes;
    ++streamed_count_;
  }
}

void BlockStreamer::wait_prefetch(int i) {
  if (!prefetch_ || prefetch_->block < 0) return;
  if (i >= 0 && prefetch_->block != i) return;
#if FRAMESMITH_HAS_CUDA
  if (device_.is_cuda())
    prefetch_->done.block(c10::cuda::getCurrentCUDAStream(device_.device.index()));
#endif
  prefetch_->block = -1;
}

void BlockStreamer::drop(int i) {
  Block& b = blocks_[static_cast<std::size_t>(i)];
  if (b.where == Where::kHost) return;
  if (prefetch_ && prefetch_->block == i) wait_prefetch(i);
  for (std::size_t k = 0; k < b.refs.size(); ++k) *b.refs[k].second = b.host[k];
  b.where = Where::kHost;
}

int BlockStreamer::load_while_free_above(std::int64_t preserved, const MemoryProbe& probe,
                                         int max_count) {
  release_streamed();
  for (int i = num_blocks() - 1; i >= std::max(0, max_count); --i) drop(i);
  for (int i = 0; i < std::min(max_count, num_blocks()); ++i) {
    Block& b = blocks_[static_cast<std::size_t>(i)];
    if (b.where == Where::kResident) continue;
    const std::int64_t free = free_bytes(probe.snapshot());
    if (device_.has_device_memory() && free >= 0 && free - b.bytes < preserved) break;
    try {
      copy_in(i, Where::kResident);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      break;  // what fits is resident; the rest streams
    }
  }
  return resident_count();
}

void BlockStreamer::set_resident_count(int count) {
  release_streamed();
  for (int i = num_blocks() - 1; i >= count; --i) drop(i);  // free first, then load
  for (int i = 0; i < std::min(count, num_blocks()); ++i) copy_in(i, Where::kResident);
}

void BlockStreamer::offload_until_free(std::int64_t target, const MemoryProbe& probe) {
  release_streamed();
  for (int i = num_blocks() - 1; i >= 0; --i) {
    const std::int64_t free = free_bytes(probe.snapshot());
    if (free >= target) break;
    drop(i);
  }
}

void BlockStreamer::before_block(int i) {
  if (cancel != nullptr && cancel->load()) throw Cancelled();
  if (i < 0 || i >= num_blocks())
    throw Error(name_ + ": block index " + std::to_string(i) + " out of range");
  Block& b = blocks_[static_cast<std::size_t>(i)];
  // The previous streamed blocks are done: their copies go.
  for (int j = 0; j < num_blocks(); ++j)
    if (j != i && blocks_[static_cast<std::size_t>(j)].where == Where::kStreamed &&
        !(prefetch_ && prefetch_->block == j))
      drop(j);
  if (b.where == Where::kHost) copy_in(i, Where::kStreamed);
  wait_prefetch(i);
  if (!prefetch) return;
  // The next block that is not resident starts coming in while this one runs.
  for (int j = i + 1; j < num_blocks(); ++j) {
    const Block& n = blocks_[static_cast<std::size_t>(j)];
    if (n.where == Where::kResident) continue;
    if (n.where == Where::kHost) {
      copy_in(j, Where::kStreamed);
      prefetch_->block = j;  // kept by the next before_block (CUDA: its copy may be in flight)
    }
    break;
  }
}

void BlockStreamer::release_streamed() {
  wait_prefetch(-1);
  for (int i = 0; i < num_blocks(); ++i)
    if (blocks_[static_cast<std::size_t>(i)].where == Where::kStreamed) drop(i);
}

// ---------------------------------------------------------------------------------------------
// TransformerResidency

std::int64_t transformer_non_block_bytes(const TransformerConfig& cfg, at::ScalarType dtype) {
  std::int64_t elements = 0;
  for (const ParamSpec& p : transformer_parameter_specs(cfg)) {
    if (p.name.rfind("transformer_blocks.", 0) == 0 ||
        p.name.rfind("single_transformer_blocks.", 0) == 0)
      continue;
    std::int64_t n = 1;
    for (std::int64_t d : p.shape) n *= d;
    elements += n;
  }
  return elements * static_cast<std::int64_t>(c10::elementSize(dtype));
}

TransformerResidency::TransformerResidency(PackedTransformer& transformer,
                                           const ComputeDevice& device)
    : transformer_(transformer) {
  streamer_ = std::make_unique<BlockStreamer>(
      "transformer", transformer.num_blocks(),
      [&transformer](int i) { return transformer.block_tensors(i); }, device);
  at::ScalarType dtype = at::kFloat;
  if (transformer.num_blocks() > 0) {
    const auto refs = transformer.block_tensors(0);
    if (!refs.empty()) dtype = refs.front().second->scalar_type();
  }
  non_block_bytes_ = transformer_non_block_bytes(transformer.config(), dtype);
  non_block_ = WeightReservation(device, non_block_bytes_);
  transformer_.before_block = [this](int i) { streamer_->before_block(i); };
}

TransformerResidency::~TransformerResidency() {
  transformer_.before_block = nullptr;
  streamer_.reset();
  non_block_.release();
}

// ---------------------------------------------------------------------------------------------
// Policies

bool ResidencyPolicy::offload_more(TransformerResidency& t) {
  const int resident = t.blocks().resident_count();
  if (resident == 0) return false;
  t.blocks().set_resident_count(resident / 2);
  return true;
}

namespace {

class HighVramPolicy final : public ResidencyPolicy {
 public:
  explicit HighVramPolicy(ResidencyLimits l) : ResidencyPolicy(l) {}
  std::string name() const override { return "high-vram"; }
  bool stream_text_encoder() const override { return false; }
  bool unload_after_use() const override { return false; }
  std::string prepare_sampling(TransformerResidency& t, const MemoryProbe&,
                               int max_resident) override {
    BlockStreamer& b = t.blocks();
    const int target = std::min(max_resident, b.num_blocks());
    if (b.resident_count() == target) return "";
    b.set_resident_count(target);
    if (target == b.num_blocks())
      return "transformer: all " + std::to_string(b.num_blocks()) + " blocks resident (" +
             format_size(double(b.total_bytes() + t.non_block_bytes())) + ")";
    return "transformer: " + std::to_string(target) + " of " + std::to_string(b.num_blocks()) +
           " blocks resident (limit from planning or an earlier out-of-memory), the rest "
           "streamed";
  }
  std::string prepare_decode(TransformerResidency&, const MemoryProbe&) override { return ""; }
};

class LowVramPolicy final : public ResidencyPolicy {
 public:
  explicit LowVramPolicy(ResidencyLimits l) : ResidencyPolicy(l) {}
  std::string name() const override { return "low-vram"; }
  bool stream_text_encoder() const override { return true; }
  bool unload_after_use() const override { return true; }
  std::string prepare_sampling(TransformerResidency& t, const MemoryProbe& probe,
                               int max_resident) override {
    BlockStreamer& b = t.blocks();
    const int before = b.resident_count();
    const int resident = b.load_while_free_above(limits_.preserved_memory, probe, max_resident);
    if (resident == before && before != 0) return "";
    return "transformer: " + std::to_string(resident) + " of " + std::to_string(b.num_blocks()) +
           " blocks resident, " + std::to_string(b.num_blocks() - resident) +
           " streamed per block (preserving " + format_size(double(limits_.preserved_memory)) + ")";
  }
  std::string prepare_decode(TransformerResidency& t, const MemoryProbe& probe) override {
    BlockStreamer& b = t.blocks();
    const int before = b.resident_count();
    b.offload_until_free(limits_.decode_free_target, probe);
    if (b.resident_count() == before) return "";
    return "transformer: offloaded " + std::to_string(before - b.resident_count()) +
           " blocks before decoding (target " + format_size(double(limits_.decode_free_target)) +
           " free), " + std::to_string(b.resident_count()) + " still resident";
  }
};

}  // namespace

std::unique_ptr<ResidencyPolicy> make_high_vram_policy(ResidencyLimits limits) {
  return std::make_unique<HighVramPolicy>(limits);
}

std::unique_ptr<ResidencyPolicy> make_low_vram_policy(ResidencyLimits limits) {
  return std::make_unique<LowVramPolicy>(limits);
}

std::unique_ptr<ResidencyPolicy> choose_residency_policy(std::int64_t free_bytes,
                                                         ResidencyLimits limits) {
  if (free_bytes > limits.high_vram_threshold) return make_high_vram_policy(limits);
  return make_low_vram_policy(limits);
}

}  // namespace framesmith::memory
