#include "memory/residency.h"

#include <algorithm>
#include <array>
#include <cstring>

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

at::Tensor ComputeDevice::to_device(const at::Tensor& host, const WeightForm& form) const {
  if (simulated) {
    OnDeviceScope on_device;  // the converted copy is the device copy: it counts
    return to_compute(host, form);
  }
  if (device.is_cpu()) return form.matches(host) ? host : to_compute(host, form);
  // The stored bytes (half of float32's for bf16, a quarter for float8) cross the bus; the
  // conversion then runs on the device (`to` keeps a tensor already in its dtype).
  const at::Tensor stored = host.to(device);
  return form.raw_float8 || form.lora ? to_compute(stored, form) : stored.to(form.dtype);
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

namespace {

#if FRAMESMITH_HAS_CUDA
// A page-locked staging buffer, reused in turn: a unit's stored bytes are copied into it on the
// host, then sent from it asynchronously. Pinning each streamed tensor once instead kept the
// whole streamed model page-locked (26 GB for 13B bf16, more than a 24 GB host has).
struct StagingSlot {
  at::Tensor pinned;                         // kByte, page-locked, staging_slot_bytes() long
  c10::Event copied{c10::DeviceType::CUDA};  // recorded after the copies that read it
  bool in_use = false;
};
#endif

}  // namespace

struct BlockStreamer::Prefetch {
  int block = -1;  // the block whose copy is in flight (-1: none)
#if FRAMESMITH_HAS_CUDA
  c10::optional<c10::cuda::CUDAStream> stream;  // CUDA only: the side stream copies run on
  c10::Event done{c10::DeviceType::CUDA};       // recorded on it after the last copy
  std::array<StagingSlot, kStagingSlots> ring;
  std::size_t next = 0;
#endif
};

namespace {

constexpr std::int64_t kStagingAlign = 64;

std::int64_t aligned(std::int64_t n) {
  return (n + kStagingAlign - 1) / kStagingAlign * kStagingAlign;
}

#if FRAMESMITH_HAS_CUDA
// Copies `host` (stored tensors) into the slot's buffer, after the device finished reading its
// previous contents; returns views of the copies there, shaped and typed as `host`.
std::vector<at::Tensor> stage(StagingSlot& slot, const std::vector<at::Tensor>& host) {
  if (slot.in_use) slot.copied.synchronize();
  std::vector<at::Tensor> views;
  std::int64_t offset = 0;
  for (const at::Tensor& h : host) {
    const at::Tensor src = h.contiguous();
    const std::int64_t n = tensor_bytes(src);
    const at::Tensor dst = slot.pinned.narrow(0, offset, n);
    if (n > 0) std::memcpy(dst.data_ptr(), src.data_ptr(), static_cast<std::size_t>(n));
    views.push_back(dst.view(src.scalar_type()).view(src.sizes()));
    offset += aligned(n);
  }
  return views;
}
#endif

}  // namespace

BlockStreamer::BlockStreamer(std::string model_name, int num_blocks, TensorsOf tensors_of,
                             ComputeDevice device, FormOf form_of)
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
      WeightForm form;
      form.dtype = t.scalar_type();
      if (form_of) form = form_of(key);
      b.host.push_back(t);
      b.forms.push_back(form);
      b.host_bytes += tensor_bytes(t);
      b.bytes += t.numel() * static_cast<std::int64_t>(c10::elementSize(form.dtype));
      b.converts = b.converts || !form.matches(t);
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

std::int64_t BlockStreamer::staging_slot_bytes() const {
  std::int64_t most = 0;
  for (const Block& b : blocks_) {
    std::int64_t n = 0;
    for (const at::Tensor& h : b.host) n += aligned(tensor_bytes(h));
    most = std::max(most, n);
  }
  return most;
}

std::int64_t BlockStreamer::pinned_bytes() const {
  std::int64_t n = 0;
#if FRAMESMITH_HAS_CUDA
  if (prefetch_)
    for (const StagingSlot& s : prefetch_->ring) n += tensor_bytes(s.pinned);
#endif
  return n;
}

std::int64_t BlockStreamer::host_bytes() const {
  std::int64_t n = 0;
  for (const Block& b : blocks_) n += b.host_bytes;
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
  // Plain CPU: the host tensors are what runs, unless they are stored weights that need
  // converting (then the converted copies run, made here as on a device).
  if (!device_.has_device_memory() && !b.converts) {
    b.where = as;
    return;
  }
  if (copy_in_async(b, i, as)) return;
  std::vector<at::Tensor> copies;
  for (std::size_t k = 0; k < b.host.size(); ++k)
    copies.push_back(device_.to_device(b.host[k], b.forms[k]));
  for (std::size_t k = 0; k < copies.size(); ++k) *b.refs[k].second = copies[k];
  b.where = as;
  if (as == Where::kStreamed && device_.has_device_memory()) count_streamed(b.bytes);
}

bool BlockStreamer::copy_in_async(Block& b, int i, Where as) {
#if FRAMESMITH_HAS_CUDA
  // Raw float8 codes are decoded by a gather, LoRA factors added by a matmul, on the compute
  // stream: synchronous copies.
  const bool raw = std::any_of(b.forms.begin(), b.forms.end(), [](const WeightForm& f) {
    return f.raw_float8.has_value() || f.lora != nullptr;
  });
  if (!device_.is_cuda() || as != Where::kStreamed || !prefetch || raw) return false;
  // Allocated on the compute stream (so that its later frees are ordered with the kernels that
  // use the block), filled on the side stream after the compute stream's pending work.
  const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(device_.device.index());
  // Staged in the next slot of the ring (modules that only ever become resident, high-VRAM,
  // never cost pinned memory); without pinning, the pageable stored tensors themselves.
  StagingSlot* slot = nullptr;
  std::vector<at::Tensor> sources = b.host;
  if (pin_host_memory) {
    slot = &prefetch_->ring[prefetch_->next++ % prefetch_->ring.size()];
    // Allocated at its first use, the size of the largest unit (walked once, not per copy).
    if (!slot->pinned.defined())
      slot->pinned = at::empty({staging_slot_bytes()},
                               at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    sources = stage(*slot, b.host);
  }
  // The copies are made in the compute dtype: a non-blocking copy converts on the device.
  std::vector<at::Tensor> copies;
  for (std::size_t k = 0; k < b.host.size(); ++k)
    copies.push_back(at::empty(
        b.host[k].sizes(),
        b.host[k].options().dtype(b.forms[k].dtype).device(device_.device).pinned_memory(false)));
  c10::Event ready(c10::DeviceType::CUDA);
  ready.record(main);
  {
    c10::cuda::CUDAStreamGuard guard(*prefetch_->stream);
    ready.block(*prefetch_->stream);
    for (std::size_t k = 0; k < copies.size(); ++k) copies[k].copy_(sources[k], true);
    prefetch_->done.record(*prefetch_->stream);
    if (slot != nullptr) {
      slot->copied.record(*prefetch_->stream);
      slot->in_use = true;
    }
  }
  prefetch_->block = i;
  for (std::size_t k = 0; k < copies.size(); ++k) *b.refs[k].second = copies[k];
  b.where = as;
  count_streamed(b.bytes);
  return true;
#else
  (void)b;
  (void)i;
  (void)as;
  return false;
#endif
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
      [&transformer](int i) { return transformer.module_tensors(i); }, device,
      [&transformer](const std::string& key) { return transformer.weight_form(key); });
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
  std::string pinned;  // CUDA streaming's staging ring, once it exists
  if (m.pinned_bytes() > 0) pinned = ", " + format_size(double(m.pinned_bytes())) + " pinned";
  return std::to_string(m.resident_count()) + " of " + std::to_string(m.num_blocks()) +
         " modules resident (" + std::to_string(resident_blocks()) + " of " +
         std::to_string(num_blocks()) + " blocks, " + format_size(double(m.resident_bytes())) +
         pinned + ")";
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
  std::unique_ptr<ResidencyPolicy> fallback() const override {
    return make_low_vram_policy(limits_);
  }
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
