// Pieces shared by the byte-level BPE tokenizers (LLaMA-3 tokenizer.json, CLIP vocab/merges):
// UTF-8 helpers, GPT-2's byte<->unicode alphabet, a PCRE2 regex wrapper, the rank-ordered merge
// loop and a bounded word cache. Nothing here knows about a particular file format.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace framesmith::text {

// What a tokenizer returns: token ids and the matching attention mask (1 = token, 0 = padding).
struct Encoding {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> attention_mask;
};

namespace detail {

// Replaces every invalid UTF-8 sequence (stray continuation bytes, overlong forms, surrogates,
// code points above U+10FFFF, truncated sequences) by U+FFFD, one per maximal invalid subpart,
// as Python's errors="replace" does. Valid input comes back unchanged.
std::string sanitize_utf8(std::string_view s);

// Decodes valid UTF-8 (run sanitize_utf8 first) into code points.
std::vector<char32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);

// GPT-2's reversible byte -> printable code point table (printable Latin-1 bytes map to
// themselves, the others to U+0100 and up), as UTF-8 strings; and the inverse (-1: not a byte).
const std::array<std::string, 256>& byte_to_unicode();
int unicode_to_byte(char32_t cp);

// A compiled PCRE2 pattern in UTF + UCP mode (Unicode classes such as \p{L} and \s). Matching is
// thread-safe: each call uses its own match data.
class Regex {
 public:
  Regex(const std::string& pattern, bool caseless, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(begin, end) for every non-overlapping match of valid UTF-8 `text`, left to
  // right (an empty match advances by one character, as Python and Rust do).
  void for_each_match(std::string_view text,
                      const std::function<void(std::size_t, std::size_t)>& on_match) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// token string -> id, for vocabularies of 10^5 entries that must load in well under a second:
// open addressing over indices into flat key/id arrays (std::unordered_map spends most of the
// load time in cache misses on its nodes).
class Vocab {
 public:
  void reserve(std::size_t n);
  // Adds token -> id; a token added again takes the new id (as a JSON object's last key wins).
  void insert(std::string token, std::int32_t id);
  // The id of `token`, or -1.
  std::int32_t find(std::string_view token) const;
  std::size_t size() const { return keys_.size(); }
  // Calls f(token, id) for every entry.
  template <typename F>
  void for_each(F f) const {
    for (std::size_t i = 0; i < keys_.size(); ++i) f(keys_[i], ids_[i]);
  }

 private:
  struct Slot {
    std::int32_t index = -1;  // into keys_/ids_; -1 = empty
    std::uint32_t tag = 0;    // high hash bits of that key
  };
  static std::uint64_t hash_of(std::string_view token);
  // The slot holding `token`, or the empty one where it would go.
  std::size_t slot_of(std::string_view token, std::uint64_t hash) const;
  void rehash(std::size_t slots);

  std::vector<std::string> keys_;
  std::vector<std::int32_t> ids_;
  std::vector<Slot> slots_;  // size a power of two, at most 3/4 full
};

// The merge table of a BPE model over token ids: pair (left, right) -> (rank, merged id), in an
// open-addressing table (looked up for every adjacent pair while encoding).
class BpeMerges {
 public:
  void reserve(std::size_t n);
  // A later merge of the same pair replaces the earlier one (as HF and CLIP build their maps).
  void add(std::int32_t left, std::int32_t right, std::int32_t rank, std::int32_t merged);
  std::size_t size() const { return count_; }

  // Applies merges to `symbols` in place, lowest rank first; among equal ranks leftmost first.
  // `whole_rank_passes` = true merges every occurrence of the chosen pair before looking at pairs
  // formed by those merges (the classic loop of CLIP's simple_tokenizer.py); false follows the
  // priority-queue loop of huggingface/tokenizers. Both are O(n log n) in the word length; they
  // differ only for merge tables where a merged pair outranks the pair that formed it.
  void apply(std::vector<std::int32_t>& symbols, bool whole_rank_passes) const;

 private:
  struct Entry {
    std::int32_t rank;
    std::int32_t merged;
  };
  struct Slot {
    std::uint64_t key = kEmpty;
    Entry entry{};
  };
  static constexpr std::uint64_t kEmpty = ~0ull;
  static std::uint64_t key(std::int32_t l, std::int32_t r) {
    return (std::uint64_t(std::uint32_t(l)) << 32) | std::uint32_t(r);
  }
  std::size_t slot_of(std::uint64_t k) const;
  const Entry* find(std::int32_t l, std::int32_t r) const;
  void rehash(std::size_t slots);

  std::vector<Slot> slots_;  // size a power of two, at most 3/4 full
  std::size_t count_ = 0;
};

// Word -> ids memo shared by encode calls (prompts repeat words). Bounded: long words are not
// stored and the map is cleared when full, so memory stays small for any input.
class WordCache {
 public:
  bool get(const std::string& word, std::vector<std::int32_t>& ids) const;
  void put(const std::string& word, const std::vector<std::int32_t>& ids);

  static constexpr std::size_t kMaxWordBytes = 256;
  static constexpr std::size_t kMaxEntries = 65536;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::int32_t>> map_;
};

// Reads a whole file; throws Error naming `what` and the path when it cannot be read.
std::string read_file(const std::string& path, const std::string& what);
// read_file's text as JSON; Error "<what> <path>: malformed JSON: ..." when it is not.
nlohmann::json parse_json(const std::string& path, const std::string& what);

}  // namespace detail
}  // namespace framesmith::text
