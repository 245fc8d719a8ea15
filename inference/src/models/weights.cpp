#include "models/weights.h"

#include <algorithm>
#include <sstream>

#include "framesmith/error.h"
#include "io/float8.h"

namespace framesmith {
namespace {

bool is_floating(const std::string& dtype) {
  return dtype == "F64" || dtype == "F32" || dtype == "F16" || dtype == "BF16" ||
         dtype == "F8_E4M3" || dtype == "F8_E5M2";
}

// NaN and infinite values of a stored floating tensor. In slices: at::isfinite of a whole tensor
// would allocate a flag per element (half a gigabyte for a LLaMA embedding table); float8 codes
// are tested by their bits, without decoding.
std::int64_t count_nonfinite(const at::Tensor& t, const std::string& dtype) {
  if (const auto f8 = io::float8_format(dtype))
    return io::count_float8_nonfinite(t.scalar_type() == at::kByte ? t : t.view(at::kByte), *f8);
  constexpr std::int64_t kSlice = std::int64_t{1} << 22;
  const at::Tensor flat = t.reshape({-1});
  std::int64_t bad = 0;
  for (std::int64_t s = 0; s < flat.numel(); s += kSlice) {
    const at::Tensor slice = flat.narrow(0, s, std::min(kSlice, flat.numel() - s));
    bad += slice.numel() - at::isfinite(slice).sum().item<std::int64_t>();
  }
  return bad;
}

}  // namespace

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

at::Tensor to_compute(const at::Tensor& stored, const WeightForm& form) {
  at::Tensor t = form.raw_float8 ? io::decode_float8(stored, *form.raw_float8, form.dtype)
                                 : stored.to(form.dtype, /*non_blocking=*/false, /*copy=*/true);
  if (form.lora) apply_lora(t, *form.lora);
  return t;
}

void apply_lora(at::Tensor& weight, const std::vector<LoraFactor>& factors) {
  constexpr std::int64_t kSliceElements = std::int64_t{1} << 22;  // 16 MiB of float32
  const at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat).device(weight.device());
  for (const LoraFactor& f : factors) {
    if (f.scale == 0.0) continue;  // strength 0: the base weight, bit for bit
    const at::Tensor down = f.down.to(f32);
    const std::int64_t rows = weight.size(0), cols = weight.size(1);
    const std::int64_t step =
        std::max<std::int64_t>(1, kSliceElements / std::max<std::int64_t>(1, cols));
    for (std::int64_t r = 0; r < rows; r += step) {
      const std::int64_t n = std::min(step, rows - r);
      const at::Tensor up = f.up.narrow(0, r, n).to(f32);
      at::Tensor slice = weight.narrow(0, r, n);
      if (slice.scalar_type() == at::kFloat)
        slice.addmm_(up, down, /*beta=*/1.0, /*alpha=*/f.scale);
      else
        slice.copy_(slice.to(at::kFloat).addmm_(up, down, 1.0, f.scale));
    }
  }
}

Weights::Weights(std::shared_ptr<const io::TensorStore> store, at::ScalarType dtype,
                 at::Device device, std::string prefix, Conversion conversion)
    : store_(std::move(store)),
      dtype_(dtype),
      device_(device),
      prefix_(std::move(prefix)),
      conversion_(conversion) {}

bool Weights::has(const std::string& name) const {
  return store_->has(prefix_ + name);
}

Weights Weights::sub(const std::string& name) const {
  Weights w(store_, dtype_, device_, prefix_ + name + ".", conversion_);
  w.lora_ = lora_;
  return w;
}

Weights Weights::with_lora(
    std::shared_ptr<const std::map<std::string, std::vector<LoraFactor>>> patch) const {
  Weights w = *this;
  w.lora_ = std::move(patch);
  return w;
}

WeightForm Weights::stored_form(const std::string& name) const {
  const io::TensorInfo& ti = store_->info(prefix_ + name);
  WeightForm f;
  f.dtype = dtype_;
  const at::ScalarType stored = io::storage_scalar(ti.dtype, store_->description());
  if (!is_floating(ti.dtype))
    f.dtype = stored;
  else if (stored == at::kByte)  // float8 codes: no float8 dtype in this LibTorch
    f.raw_float8 = io::float8_format(ti.dtype);
  if (lora_) {
    if (const auto it = lora_->find(prefix_ + name); it != lora_->end())
      f.lora = std::shared_ptr<const std::vector<LoraFactor>>(lora_, &it->second);  // aliasing
  }
  return f;
}

WeightForm Weights::form(const std::string& name) const {
  WeightForm f = stored_form(name);
  // Loaded at load, get() decoded the float8 codes already.
  if (conversion_ == Conversion::kAtLoad) f.raw_float8.reset();
  return f;
}

at::Tensor Weights::get(const std::string& name, at::IntArrayRef shape) const {
  const std::string key = prefix_ + name;
  if (!store_->has(key))
    throw Error(store_->description() + ": missing tensor \"" + key + "\" (expected shape " +
                shape_str(shape) + ")");
  const io::TensorInfo& ti = store_->info(key);
  if (at::IntArrayRef(ti.shape) != shape)
    throw Error(store_->description() + ": tensor \"" + key + "\" has shape " +
                shape_str(ti.shape) + " but the config implies " + shape_str(shape));
  at::Tensor t = store_->tensor(key);
  // A checkpoint with NaN or Inf weights once made a black video and exit 0: each floating
  // tensor is checked once, as it is loaded (a pass over the mapped bytes, which the first use
  // would read anyway), and refused by name.
  if (is_floating(ti.dtype)) {
    if (const std::int64_t bad = count_nonfinite(t, ti.dtype); bad > 0)
      throw Error(store_->description() + ": tensor \"" + key + "\" holds " + std::to_string(bad) +
                  " NaN or infinite value(s) of " + std::to_string(t.numel()) +
                  ": the checkpoint is damaged");
  }
  // At use: the mapped tensor itself, on the host, in the file's dtype.
  if (conversion_ == Conversion::kAtUse) return t;
  // Floating weights are converted to the compute dtype with rounding (`to`; float8 decoded
  // exactly), integers kept.
  const WeightForm f = stored_form(name);
  if (!f.matches(t)) t = to_compute(t, f);
  if (t.device() != device_) t = t.to(device_);
  return t;
}

at::Tensor Weights::get_optional(const std::string& name, at::IntArrayRef shape) const {
  if (!has(name)) return at::Tensor();
  return get(name, shape);
}

std::vector<std::string> check_specs(const io::TensorStore& store,
                                     const std::vector<ParamSpec>& specs) {
  std::vector<std::string> problems;
  for (const ParamSpec& p : specs) {
    if (!store.has(p.name)) {
      problems.push_back("missing tensor \"" + p.name + "\" " + shape_str(p.shape));
      continue;
    }
    const io::TensorInfo& ti = store.info(p.name);
    if (at::IntArrayRef(ti.shape) != at::IntArrayRef(p.shape))
      problems.push_back("tensor \"" + p.name + "\" has shape " + shape_str(ti.shape) +
                         ", config implies " + shape_str(p.shape));
    else if (!is_floating(ti.dtype))
      problems.push_back("tensor \"" + p.name + "\" has integer dtype " + ti.dtype +
                         ", a floating dtype is expected");
  }
  return cap_problems(std::move(problems));
}

std::vector<std::string> cap_problems(std::vector<std::string> problems, std::size_t shown) {
  if (problems.size() <= shown) return problems;
  std::size_t missing = 0;
  for (std::size_t i = shown; i < problems.size(); ++i)
    if (problems[i].rfind("missing tensor", 0) == 0) ++missing;
  const std::size_t more = problems.size() - shown;
  problems.resize(shown);
  problems.push_back("... and " + std::to_string(more) + " more (" + std::to_string(missing) +
                     " of them missing tensors)");
  return problems;
}

std::vector<std::pair<std::string, at::Tensor>> make_random_weights(
    const std::vector<ParamSpec>& specs, std::uint64_t seed, double std) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.reserve(specs.size());
  for (const ParamSpec& p : specs) {
    at::Tensor t;
    switch (p.init) {
      case Init::kOnes:
        t = at::ones(p.shape, at::kFloat);
        break;
      case Init::kZeros:
        t = at::zeros(p.shape, at::kFloat);
        break;
      case Init::kNormal:
        t = at::randn(p.shape, gen, at::TensorOptions().dtype(at::kFloat)) * std;
        break;
    }
    out.emplace_back(p.name, t);
  }
  return out;
}

}  // namespace framesmith
