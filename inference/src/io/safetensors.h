// safetensors reading and writing. Model files are untrusted input: every header field is checked
// against the file before a tensor is made, and each violation is an Error naming file and tensor.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace framesmith::io {

constexpr std::uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // as the format's own limit

struct TensorInfo {
  std::string name;
  std::string dtype;  // as written in the file: "F32", "BF16", ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets relative to the start of the data section
  std::uint64_t end = 0;
};

// The parsed, validated header. Pure function of bytes, so the fuzzer can drive it directly.
struct Header {
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses `json_bytes` (the header) for a file whose data section is `data_bytes` long.
// `what` names the file in error messages.
Header parse_header(const char* json_bytes, std::size_t json_size, std::uint64_t data_bytes,
                    const std::string& what);

// Bytes per element of a safetensors dtype name; throws for unknown names.
std::size_t dtype_size(const std::string& dtype, const std::string& what);
// The LibTorch scalar type for a dtype name; throws where this LibTorch lacks it (float8 on 1.13).
at::ScalarType dtype_to_scalar(const std::string& dtype, const std::string& what);
// The scalar type of the tensors SafeTensorsFile::tensor makes for a dtype name: dtype_to_scalar's,
// except float8 where this LibTorch has no float8 dtype (before 2.1): kByte, the raw codes
// (io/float8.h decodes them; TensorInfo::dtype still says which format they are).
at::ScalarType storage_scalar(const std::string& dtype, const std::string& what);
std::string scalar_to_dtype(at::ScalarType t);

class MappedFile;
class TensorStore;
TensorStore open_sharded_index(const std::string& index_path);  // io/sharded_store.h

// One .safetensors file, memory-mapped. Tensors are zero-copy views of the mapping where the data
// is aligned for its element type (they keep the mapping alive), copies where not.
class SafeTensorsFile {
 public:
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  bool has(const std::string& name) const { return header_.tensors.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  std::vector<std::string> names() const;
  // CPU tensor with the file's dtype (storage_scalar: float8 may be raw codes). Read-only in
  // spirit: the mapping is private copy-on-write.
  at::Tensor tensor(const std::string& name) const;
  // Whether `t`'s data lies inside this file's mapping (a zero-copy view, not a copy).
  bool maps(const at::Tensor& t) const;

 private:
  std::string path_;
  Header header_;
  std::shared_ptr<MappedFile> map_;
  std::uint64_t data_offset_ = 0;
};

// A checkpoint made of one file or of shards listed in `*.safetensors.index.json`.
class TensorStore {
 public:
  // `path`: a .safetensors file, an index.json, or a folder holding exactly one of either.
  static TensorStore open(const std::string& path);

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const;
  // Whether `t`'s data lies inside one of the store's mapped files (a zero-copy view).
  bool maps(const at::Tensor& t) const;
  const std::string& description() const { return description_; }
  std::map<std::string, std::string> metadata() const;
  std::uint64_t total_bytes() const;

 private:
  // Sharded stores are opened and checked in io/sharded_store.cpp.
  friend TensorStore open_sharded_index(const std::string& index_path);
  std::vector<std::shared_ptr<SafeTensorsFile>> files_;
  std::map<std::string, std::size_t> where_;
  std::string description_;
};

// Throws an Error explaining why pickled checkpoints are refused, if `path` looks like one.
void refuse_pickle(const std::string& path);

// Writes tensors (any device; copied to CPU, contiguous) with optional metadata, atomically
// (temporary file + rename) so a crash never leaves half a checkpoint.
// `float8_codes`: tensors (by name) that are raw float8 codes (kByte), written as that dtype
// ("F8_E4M3", "F8_E5M2"), so that float8 checkpoints can be written on LibTorch 1.13 too.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      const std::map<std::string, std::string>& float8_codes = {});

}  // namespace framesmith::io
