// Text from users and files is bytes; JSON (events, job files, metadata) needs valid UTF-8.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace framesmith {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, surrogates or
// code points past U+10FFFF), or 0 when it is malformed; `invalid` is then the length of its
// maximal invalid subpart (at least 1), which Python's errors="replace" turns into one U+FFFD.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i, std::size_t& invalid);

// The offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points past U+10FFFF count as malformed), or std::string::npos.
std::size_t invalid_utf8_offset(const std::string& text);
inline bool is_valid_utf8(const std::string& text) {
  return invalid_utf8_offset(text) == std::string::npos;
}
// `text` with each malformed byte written as \xFF, for messages and events: readable, and
// never a JSON serialisation error.
std::string escape_invalid_utf8(const std::string& text);

}  // namespace framesmith
