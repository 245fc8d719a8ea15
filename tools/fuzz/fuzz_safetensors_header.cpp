// libFuzzer: the safetensors header parser must reject hostile headers with an Error, never crash,
// overflow or accept a tensor outside the data section.
#include <cstdint>
#include <cstring>

#include "framesmith/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t data_bytes = 0;
  std::memcpy(&data_bytes, data, 8);  // the first 8 bytes choose the data-section size
  data_bytes %= (1ull << 20);
  try {
    const auto h = framesmith::io::parse_header(reinterpret_cast<const char*>(data) + 8, size - 8,
                                                data_bytes, "fuzz");
    for (const auto& [name, t] : h.tensors) {
      if (t.end > data_bytes || t.begin > t.end) __builtin_trap();  // a bound slipped through
    }
  } catch (const framesmith::Error&) {
  }
  return 0;
}
