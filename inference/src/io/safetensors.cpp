#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "io/files.h"
#include "io/float8.h"
#include "io/sharded_store.h"

namespace framesmith::io {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& what, const std::string& msg) {
  throw Error(what + ": " + msg);
}

std::string lower_ext(const std::string& path) {
  auto dot = path.find_last_of('.');
  if (dot == std::string::npos) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  return ext;
}

// The regular *.safetensors files directly in `dir`, sorted.
std::vector<std::string> safetensors_files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string p = e.path().string();
    if (lower_ext(p) == ".safetensors" && is_file(p)) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// dtypes

std::size_t dtype_size(const std::string& dtype, const std::string& what) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8},     {"F32", 4},  {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1},
      {"F8_E5M2", 1}, {"I64", 8},  {"I32", 4}, {"I16", 2},  {"I8", 1},
      {"U8", 1},      {"BOOL", 1}, {"U16", 2}, {"U32", 4},  {"U64", 8}};
  auto it = sizes.find(dtype);
  if (it == sizes.end()) fail(what, "unknown dtype \"" + dtype + "\"");
  return it->second;
}

at::ScalarType dtype_to_scalar(const std::string& dtype, const std::string& what) {
  if (dtype == "F64") return at::kDouble;
  if (dtype == "F32") return at::kFloat;
  if (dtype == "F16") return at::kHalf;
  if (dtype == "BF16") return at::kBFloat16;
  if (dtype == "I64") return at::kLong;
  if (dtype == "I32") return at::kInt;
  if (dtype == "I16") return at::kShort;
  if (dtype == "I8") return at::kChar;
  if (dtype == "U8") return at::kByte;
  if (dtype == "BOOL") return at::kBool;
#if FRAMESMITH_HAS_FLOAT8
  if (dtype == "F8_E4M3") return at::kFloat8_e4m3fn;
  if (dtype == "F8_E5M2") return at::kFloat8_e5m2;
#else
  if (dtype == "F8_E4M3" || dtype == "F8_E5M2")
    fail(what, "dtype " + dtype + " needs LibTorch 2.1 or newer (this build has " +
                   compat::torch_version_string() + ")");
#endif
  fail(what, "dtype " + dtype + " is not supported");
}

at::ScalarType storage_scalar(const std::string& dtype, const std::string& what) {
#if !FRAMESMITH_HAS_FLOAT8
  if (float8_format(dtype)) return at::kByte;
#endif
  return dtype_to_scalar(dtype, what);
}

std::string scalar_to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kDouble:
      return "F64";
    case at::kFloat:
      return "F32";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
#if FRAMESMITH_HAS_FLOAT8
    case at::kFloat8_e4m3fn:
      return "F8_E4M3";
    case at::kFloat8_e5m2:
      return "F8_E5M2";
#endif
    default:
      throw Error(std::string("cannot store dtype ") + c10::toString(t) + " in safetensors");
  }
}

// ---------------------------------------------------------------------------------------------
// header

Header parse_header(const char* json_bytes, std::size_t json_size, std::uint64_t data_bytes,
                    const std::string& what) {
  json j;
  // JSON keeps the last of two equal keys without a word: a header naming one tensor twice
  // (two data ranges, one silently dropped) is refused instead.
  std::set<std::string> top_keys;
  std::string duplicate;
  const json::parser_callback_t on_key = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !top_keys.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    j = json::parse(json_bytes, json_bytes + json_size, on_key);
  } catch (const std::exception& e) {
    fail(what, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) fail(what, "header is not a JSON object");
  if (!duplicate.empty()) fail(what, "header names tensor \"" + duplicate + "\" twice");

  Header h;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(what, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail(what, "__metadata__ value \"" + m.key() + "\" is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = what + ", tensor \"" + name + "\"";
    if (!v.is_object()) fail(tw, "entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail(tw, "missing or non-string \"dtype\"");
    if (sh == v.end() || !sh->is_array()) fail(tw, "missing or non-array \"shape\"");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      fail(tw, "\"data_offsets\" must be an array of two offsets");

    TensorInfo info;
    info.name = name;
    info.dtype = dt->get<std::string>();
    const std::size_t esize = dtype_size(info.dtype, tw);
    if (sh->size() > 16) fail(tw, "more than 16 dimensions");
    // Element count with overflow checks: a hostile shape must not wrap around.
    unsigned __int128 count = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) fail(tw, "shape entries must be non-negative integers");
      std::uint64_t dim = d.get<std::uint64_t>();
      if (dim > (1ull << 62)) fail(tw, "dimension too large");
      info.shape.push_back(static_cast<std::int64_t>(dim));
      count *= dim;
      if (count > (static_cast<unsigned __int128>(1) << 63)) fail(tw, "element count overflows");
    }
    for (const json& o : *off)
      if (!o.is_number_unsigned()) fail(tw, "data_offsets must be non-negative integers");
    info.begin = (*off)[0].get<std::uint64_t>();
    info.end = (*off)[1].get<std::uint64_t>();
    if (info.end < info.begin) fail(tw, "data_offsets end before they begin");
    if (info.end > data_bytes)
      fail(tw, "data ends at byte " + std::to_string(info.end) +
                   " but the file's data section has " + std::to_string(data_bytes) +
                   " bytes (truncated file?)");
    const unsigned __int128 nbytes = count * esize;
    if (nbytes != info.end - info.begin)
      fail(tw, "dtype " + info.dtype + " x shape needs " +
                   std::to_string(static_cast<std::uint64_t>(nbytes)) +
                   " bytes but data_offsets span " + std::to_string(info.end - info.begin));
    ranges.emplace_back(info.begin, info.end);
    h.tensors.emplace(name, std::move(info));
  }
  // Tensors may not overlap (a crafted file could alias one tensor's bytes into another).
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      std::string a, b;
      for (const auto& [n, t] : h.tensors) {
        if (t.begin == ranges[i - 1].first && t.end == ranges[i - 1].second && a.empty())
          a = n;
        else if (t.begin == ranges[i].first && t.end == ranges[i].second)
          b = n;
      }
      fail(what, "tensors \"" + a + "\" and \"" + b + "\" overlap in the data section");
    }
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// mapping

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail(path, "not a regular file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    if (size_ > 0) {
      // Private mapping: tensors are views; a write through one would never reach the file.
      void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) {
        ::close(fd_);
        fail(path, std::string("mmap failed (") + std::strerror(errno) + ")");
      }
      data_ = static_cast<char*>(p);
    }
  }
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  char* data() const { return data_; }
  std::uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  char* data_ = nullptr;
  std::uint64_t size_ = 0;
};

void refuse_pickle(const std::string& path) {
  const std::string ext = lower_ext(path);
  if (ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".ckpt" || ext == ".pkl") {
    throw Error(path +
                ": pickled checkpoints are refused: unpickling runs arbitrary code from the file. "
                "Use the .safetensors version of this model (every FramePack/HunyuanVideo "
                "repository ships one).");
  }
}

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string& path) {
  refuse_pickle(path);
  auto f = std::shared_ptr<SafeTensorsFile>(new SafeTensorsFile());
  f->path_ = path;
  f->map_ = std::make_shared<MappedFile>(path);
  const std::uint64_t size = f->map_->size();
  if (size < 8)
    fail(path, "file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  std::uint64_t n = 0;
  std::memcpy(&n, f->map_->data(), 8);  // little-endian u64 (x86-64 and arm64 hosts)
  if (n > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > size - 8)
    fail(path, "header length " + std::to_string(n) + " runs past the end of the " +
                   std::to_string(size) + "-byte file (truncated or not safetensors)");
  f->data_offset_ = 8 + n;
  f->header_ = parse_header(f->map_->data() + 8, n, size - f->data_offset_, path);
  return f;
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) fail(path_, "no tensor named \"" + name + "\"");
  return it->second;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& kv : header_.tensors) out.push_back(kv.first);
  return out;
}

at::Tensor SafeTensorsFile::tensor(const std::string& name) const {
  const TensorInfo& ti = info(name);
  const at::ScalarType st = storage_scalar(ti.dtype, path_ + ", tensor \"" + name + "\"");
  char* ptr = map_->data() + data_offset_ + ti.begin;
  const auto opts = at::TensorOptions().dtype(st).device(at::kCPU);
  const std::size_t esize = dtype_size(ti.dtype, path_);
  const bool aligned = reinterpret_cast<std::uintptr_t>(ptr) % esize == 0;
  if (ti.end == ti.begin) return at::empty(ti.shape, opts);
  if (aligned) {
    // Zero-copy: the deleter holds the mapping alive as long as any view lives.
    auto keep = new std::shared_ptr<MappedFile>(map_);
    return at::from_blob(
        ptr, ti.shape, [keep](void*) { delete keep; }, opts);
  }
  at::Tensor t = at::empty(ti.shape, opts);
  std::memcpy(t.data_ptr(), ptr, ti.end - ti.begin);
  return t;
}

bool SafeTensorsFile::maps(const at::Tensor& t) const {
  if (!t.defined() || t.numel() == 0) return false;
  const char* begin = map_->data();
  const char* p = static_cast<const char*>(t.data_ptr());
  const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
  return p >= begin && p + bytes <= begin + map_->size();
}

// ---------------------------------------------------------------------------------------------
// stores (single file or sharded)

TensorStore TensorStore::open(const std::string& path_in) {
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (is_dir(path)) {
    // A model component folder: exactly one index, else exactly one .safetensors file.
    std::vector<std::string> indexes, files, pickles;
    for (const char* cand :
         {"diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"})
      if (is_file(path + "/" + std::string(cand)))
        indexes.push_back(path + "/" + std::string(cand));
    for (const char* cand : {"diffusion_pytorch_model.safetensors", "model.safetensors"})
      if (is_file(path + "/" + std::string(cand))) files.push_back(path + "/" + std::string(cand));
    for (const char* cand :
         {"diffusion_pytorch_model.bin", "pytorch_model.bin", "model.pt", "model.ckpt"})
      if (is_file(path + "/" + std::string(cand)))
        pickles.push_back(path + "/" + std::string(cand));
    if (!indexes.empty()) return open(indexes.front());
    if (!files.empty()) return open(files.front());
    // A single-file checkpoint under its own name (Kijai's FramePackI2V_HY_fp8_e4m3fn...).
    const std::vector<std::string> others = safetensors_files_in(path);
    if (others.size() == 1) return open(others.front());
    if (others.size() > 1)
      throw Error(path + ": " + std::to_string(others.size()) +
                  " .safetensors files and no *.safetensors.index.json saying how they belong "
                  "together; keep one checkpoint in the folder");
    if (!pickles.empty()) refuse_pickle(pickles.front());
    throw Error(path +
                ": no .safetensors weights (expected model.safetensors, "
                "diffusion_pytorch_model.safetensors, a *.safetensors.index.json or one "
                "*.safetensors file)");
  }
  refuse_pickle(path);
  if (!is_file(path)) throw Error(path + ": no such file");
  TensorStore s;
  s.description_ = path;
  if (ends_with(path, ".index.json")) return open_sharded_index(path);
  s.files_.push_back(SafeTensorsFile::open(path));
  for (const auto& n : s.files_[0]->names()) s.where_[n] = 0;
  return s;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

const TensorInfo& TensorStore::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(description_, "no tensor named \"" + name + "\"");
  return files_[it->second]->info(name);
}

at::Tensor TensorStore::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(description_, "no tensor named \"" + name + "\"");
  return files_[it->second]->tensor(name);
}

bool TensorStore::maps(const at::Tensor& t) const {
  return std::any_of(files_.begin(), files_.end(),
                     [&](const std::shared_ptr<SafeTensorsFile>& f) { return f->maps(t); });
}

std::map<std::string, std::string> TensorStore::metadata() const {
  std::map<std::string, std::string> m;
  for (const auto& f : files_)
    for (const auto& kv : f->header().metadata) m.insert(kv);
  return m;
}

std::uint64_t TensorStore::total_bytes() const {
  std::uint64_t n = 0;
  for (const auto& kv : where_) {
    const TensorInfo& ti = files_[kv.second]->info(kv.first);
    n += ti.end - ti.begin;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// writing

namespace {

// The dtype name a tensor is written as: its own, or the float8 format its codes are in.
std::string dtype_to_write(const std::string& path, const std::string& name, const at::Tensor& t,
                           const std::map<std::string, std::string>& float8_codes) {
  const auto it = float8_codes.find(name);
  if (it == float8_codes.end()) return scalar_to_dtype(t.scalar_type());
  if (!float8_format(it->second) || t.scalar_type() != at::kByte)
    throw Error(path + ": tensor \"" + name + "\" is written as " + it->second +
                ", which needs uint8 float8 codes and a float8 dtype name");
  return it->second;
}

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, std::string>& float8_codes) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> cpu;
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || !seen.insert(name).second)
      throw Error(path + ": duplicate or reserved tensor name \"" + name + "\"");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const std::uint64_t nbytes = static_cast<std::uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", dtype_to_write(path, name, c, float8_codes)},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", json::array({offset, offset + nbytes})}};
    offset += nbytes;
    cpu.push_back(c);
  }
  std::string hs = header.dump();
  hs.append((8 - hs.size() % 8) % 8, ' ');  // pad so the data section starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    const std::uint64_t n = hs.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(hs.data(), static_cast<std::streamsize>(hs.size()));
    for (const auto& c : cpu)
      out.write(static_cast<const char*>(c.data_ptr()),
                static_cast<std::streamsize>(c.numel() * c.element_size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename into place (" + std::strerror(errno) + ")");
  }
}

}  // namespace framesmith::io
