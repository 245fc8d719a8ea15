#include "io/safetensors_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "framesmith/error.h"
#include "io/float8.h"
#include "io/safetensors.h"

namespace framesmith::io {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

// The header JSON (tensors in planned order, contiguous), padded with spaces to a multiple of 8
// so the data section starts aligned (as save_safetensors writes it).
std::string header_json(const std::vector<PlannedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata,
                        const std::string& path) {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (const PlannedTensor& t : tensors) {
    if (t.name == "__metadata__" || !seen.insert(t.name).second)
      throw Error(path + ": duplicate or reserved tensor name \"" + t.name + "\"");
    const std::uint64_t n = t.nbytes();
    if (!t.stored_dtype.empty() && (!float8_format(t.stored_dtype) || t.dtype != at::kByte))
      throw Error(path + ": tensor \"" + t.name + "\" planned as " + t.stored_dtype +
                  ", which needs uint8 float8 codes and a float8 dtype name");
    h[t.name] = {{"dtype", t.stored_dtype.empty() ? scalar_to_dtype(t.dtype) : t.stored_dtype},
                 {"shape", t.shape},
                 {"data_offsets", nlohmann::json::array({offset, offset + n})}};
    offset += n;
  }
  std::string s = h.dump();
  s.append((8 - s.size() % 8) % 8, ' ');
  return s;
}

}  // namespace

std::uint64_t PlannedTensor::nbytes() const {
  std::uint64_t n = at::elementSize(dtype);
  for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

SafetensorsStreamWriter::SafetensorsStreamWriter(std::string path,
                                                 std::vector<PlannedTensor> tensors,
                                                 const std::map<std::string, std::string>& metadata,
                                                 Data data)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), tensors_(std::move(tensors)), data_(data) {
  const std::string header = header_json(tensors_, metadata, path_);
  for (const PlannedTensor& t : tensors_) data_bytes_ += t.nbytes();
  header_bytes_ = 8 + header.size();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path_ + ": cannot write (" + errno_text() + ")");
  const std::uint64_t n = header.size();  // little-endian u64 (x86-64 and arm64 hosts)
  write_all(reinterpret_cast<const char*>(&n), 8);
  write_all(header.data(), header.size());
  if (data_ == Data::kSparse &&
      ::ftruncate(fd_, static_cast<off_t>(header_bytes_ + data_bytes_)) != 0)
    throw Error(path_ + ": cannot size the sparse file (" + errno_text() + ")");
  current_end_ = tensors_.empty() ? 0 : tensors_[0].nbytes();
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::remove(tmp_.c_str());
  }
}

void SafetensorsStreamWriter::write_all(const char* p, std::uint64_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw Error(path_ + ": write failed (" + errno_text() + "; disk full?)");
    p += w;
    n -= static_cast<std::uint64_t>(w);
  }
}

void SafetensorsStreamWriter::append(const at::Tensor& chunk) {
  if (data_ == Data::kSparse) throw Error(path_ + ": a sparse file takes no data");
  // Skip tensors with no bytes, so the current one is the one this chunk belongs to.
  while (current_ < tensors_.size() && written_ == current_end_ && current_ + 1 < tensors_.size()) {
    ++current_;
    current_end_ += tensors_[current_].nbytes();
  }
  if (current_ >= tensors_.size()) throw Error(path_ + ": more data than the header plans");
  const PlannedTensor& t = tensors_[current_];
  if (chunk.scalar_type() != t.dtype)
    throw Error(path_ + ", tensor \"" + t.name + "\": data of dtype " +
                c10::toString(chunk.scalar_type()) + " for a " + scalar_to_dtype(t.dtype) +
                " tensor");
  const at::Tensor c = chunk.contiguous();
  const std::uint64_t n = static_cast<std::uint64_t>(c.numel()) * c.element_size();
  if (written_ + n > current_end_)
    throw Error(path_ + ", tensor \"" + t.name + "\": more data than its shape holds");
  write_all(static_cast<const char*>(c.data_ptr()), n);
  written_ += n;
}

void SafetensorsStreamWriter::finish() {
  if (data_ == Data::kWritten && written_ != data_bytes_)
    throw Error(path_ + ": " + std::to_string(written_) + " of " + std::to_string(data_bytes_) +
                " data bytes written");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    std::remove(tmp_.c_str());
    throw Error(path_ + ": write failed on close (" + errno_text() + ")");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    throw Error(path_ + ": cannot rename into place (" + errno_text() + ")");
  }
}

}  // namespace framesmith::io
