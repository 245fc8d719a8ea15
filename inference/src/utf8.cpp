#include "framesmith/utf8.h"

#include <cstdint>
#include <cstdio>

namespace framesmith {

std::size_t utf8_sequence_length(std::string_view s, std::size_t i, std::size_t& invalid) {
  const auto is_cont = [](unsigned char b) { return (b & 0xC0) == 0x80; };
  const auto b0 = static_cast<unsigned char>(s[i]);
  invalid = 1;
  if (b0 < 0x80) return 1;
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : is_cont(b);
    if (!ok) return 0;
    invalid = k + 1;
  }
  return need;
}

std::size_t invalid_utf8_offset(const std::string& text) {
  std::size_t invalid = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence_length(text, i, invalid);
    if (n == 0) return i;
    i += n;
  }
  return std::string::npos;
}

std::string escape_invalid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  std::size_t invalid = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence_length(text, i, invalid);
    if (n == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X",
                    static_cast<unsigned>(static_cast<std::uint8_t>(text[i])));
      out += buf;
      ++i;
    } else {
      out.append(text, i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace framesmith
