// Writing a safetensors file one piece at a time: the tensors' names, dtypes and shapes are known
// before any data exists, so the header is written first and then each tensor's bytes as they are
// made. A multi-GB shard never has to sit in memory (save_safetensors holds every tensor).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace framesmith::io {

struct PlannedTensor {
  PlannedTensor(std::string name_, at::ScalarType dtype_, std::vector<std::int64_t> shape_,
                std::string stored_dtype_ = "")
      : name(std::move(name_)),
        dtype(dtype_),
        shape(std::move(shape_)),
        stored_dtype(std::move(stored_dtype_)) {}
  std::string name;
  at::ScalarType dtype = at::kFloat;
  std::vector<std::int64_t> shape;
  // The header's dtype name when it is not dtype's own: "F8_E4M3" / "F8_E5M2" for float8 codes
  // written as kByte (LibTorch 1.13 has no float8 dtype; io/float8.h encodes them).
  std::string stored_dtype;
  std::uint64_t nbytes() const;
};

// The file is written as `path + ".tmp"` and renamed into place by finish(), so a crash or a full
// disk never leaves a file that looks whole; a writer destroyed unfinished removes its temporary.
class SafetensorsStreamWriter {
 public:
  // kSparse: the data section is a hole (ftruncate): the header is exact, the data reads as zeros
  // and costs no disk, for tests and tools that read headers only.
  enum class Data { kWritten = 1, kSparse };
  SafetensorsStreamWriter(std::string path, std::vector<PlannedTensor> tensors,
                          const std::map<std::string, std::string>& metadata, Data data);
  ~SafetensorsStreamWriter();
  SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
  SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;

  // The next bytes of the tensors, in planned order; `chunk` must have the current tensor's dtype
  // and may cover part of it or all. Error for a dtype mismatch, a chunk past the planned bytes,
  // a write that fails, or a sparse writer.
  void append(const at::Tensor& chunk);
  // Checks that every planned byte was written (or the file is sparse), closes and renames.
  void finish();
  std::uint64_t file_bytes() const { return header_bytes_ + data_bytes_; }

 private:
  void write_all(const char* p, std::uint64_t n);
  std::string path_, tmp_;
  std::vector<PlannedTensor> tensors_;
  Data data_;
  int fd_ = -1;
  std::uint64_t header_bytes_ = 0, data_bytes_ = 0, written_ = 0;
  std::size_t current_ = 0;        // tensor being written
  std::uint64_t current_end_ = 0;  // its end offset in the data section
};

}  // namespace framesmith::io
