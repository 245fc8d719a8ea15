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
// c10::Event rather than at::cuda::CUDAEvent: ATen/cuda's headers pull in cuBLAS, cuSPARSE and
// cuSOLVER headers, which a CUDA runtime-only toolkit (and the pip wheels' layout) lacks.
#include <c10/core/Event.h>
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
  c10::Event done{c10::DeviceType::CUDA};       // recorded on it after the last copy
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
      // A model loaded onto the device gives its blocks back to the host here.
      if (!t.device().is_cpu()) t = t.to(at::kCPU);
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
    if (b.where == Where::kStreamed && as == Where::kResident) {  // the copy becomes resident
      if (device_.has_device_memory()) streamed_now_ -= b.bytes;
      b.where = Where::kResident;
    }
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
    if (!b.pinned && pin_host_memory) {
      // Page-locked once, at the first streaming, so that copies run asynchronously; modules that
      // only ever become resident (high-VRAM) never cost pinned host memory.
      for (at::Tensor& h : b.host) h = h.pin_memory();
      b.pinned = true;
    }
    std::vector<at::Tensor> copies;
    for (const at::Tensor& h : b.host)
      copies.push_back(at::empty_like(h, h.options().device(device_.device).pinned_memory(false)));
    c10::Event ready(c10::DeviceType::CUDA);
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
    count_streamed(b.bytes);
    return;
  }
#endif
  std::vector<at::Tensor> copies;
  for (const at::Tensor& h : b.host) copies.push_back(device_.to_device(h));
  for (std::size_t k = 0; k < copies.size(); ++k) *b.refs[k].second = copies[k];
  b.where = as;
  if (as == Where::kStreamed) count_streamed(b.bytes);
}

void BlockStreamer::count_streamed(std::int64_t bytes) {
  streamed_bytes_ += bytes;
  ++streamed_count_;
  streamed_now_ += bytes;
  streamed_peak_ = std::max(streamed_peak_, streamed_now_);
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
  if (b.where == Where::kStreamed && device_.has_device_memory()) streamed_now_ -= b.bytes;
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

TransformerResidency::TransformerResidency(PackedTransformer& transformer,
                                           const ComputeDevice& device)
    : transformer_(transformer) {
  streamer_ = std::make_unique<BlockStreamer>(
      "transformer", transformer.num_modules(),
      [&transformer](int i) { return transformer.module_tensors(i); }, device);
  if (device.has_device_memory()) transformer.set_compute_device(device.device);
  transformer_.before_module = [this](int i) { streamer_->before_block(i); };
}

TransformerResidency::~TransformerResidency() {
  transformer_.before_module = nullptr;
  streamer_.reset();
}

int TransformerResidency::modules_for_blocks(int blocks) const {
  return std::clamp(transformer_.first_block_module() + std::max(0, blocks), 0,
                    streamer_->num_blocks());
}

int TransformerResidency::num_blocks() const {
  return transformer_.num_blocks();
}

int TransformerResidency::resident_blocks() const {
  // Modules become resident in order, so the resident blocks are those after the embedders.
  return std::clamp(streamer_->resident_count() - transformer_.first_block_module(), 0,
                    num_blocks());
}

std::string TransformerResidency::describe() const {
  const BlockStreamer& m = *streamer_;
  return std::to_string(m.resident_count()) + " of " + std::to_string(m.num_blocks()) +
         " modules resident (" + std::to_string(resident_blocks()) + " of " +
         std::to_string(num_blocks()) + " blocks, " + format_size(double(m.resident_bytes())) + ")";
}

// ---------------------------------------------------------------------------------------------
// Policies

bool ResidencyPolicy::offload_more(TransformerResidency& t) {
  const int resident = t.modules().resident_count();
  if (resident == 0) return false;
  t.modules().set_resident_count(resident / 2);
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
    BlockStreamer& m = t.modules();
    const int target = std::min(max_resident, m.num_blocks());
    if (m.resident_count() == target) return "";
    m.set_resident_count(target);
    if (target == m.num_blocks())
      return "transformer: all " + std::to_string(m.num_blocks()) + " modules resident (" +
             format_size(double(m.total_bytes())) + ")";
    return "transformer: " + t.describe() +
           " (limit from planning or an earlier out-of-memory), the rest streamed per module";
  }
  std::string prepare_decode(TransformerResidency&, const MemoryProbe&) override { return ""; }
};

class LowVramPolicy final : public ResidencyPolicy {
 public:
  explicit LowVramPolicy(ResidencyLimits l) : ResidencyPolicy(l) {}
  std::string name() const override { return "low-vram"; }
  bool stream_text_encoder() const override { return true; }
  bool unload_after_use() const override { return true; }
  // FramePack's move_model_to_device_with_memory_preservation: modules in order until only the
  // preserved memory would be left; the others are streamed per module at use.
  std::string prepare_sampling(TransformerResidency& t, const MemoryProbe& probe,
                               int max_resident) override {
    BlockStreamer& m = t.modules();
    const int before = m.resident_count();
    const int resident = m.load_while_free_above(limits_.preserved_memory, probe, max_resident);
    if (resident == before && before != 0) return "";
    return "transformer: " + t.describe() + ", " + std::to_string(m.num_blocks() - resident) +
           " streamed per module (preserving " + format_size(double(limits_.preserved_memory)) +
           ")";
  }
  // FramePack's offload_model_from_device_for_memory_preservation before decoding.
  std::string prepare_decode(TransformerResidency& t, const MemoryProbe& probe) override {
    BlockStreamer& m = t.modules();
    const int before = m.resident_count();
    m.offload_until_free(limits_.decode_free_target, probe);
    if (m.resident_count() == before) return "";
    return "transformer: offloaded " + std::to_string(before - m.resident_count()) +
           " modules before decoding (target " + format_size(double(limits_.decode_free_target)) +
           " free), " + std::to_string(m.resident_count()) + " still resident";
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
