#include "text/tokenizer_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>

#include "framesmith/error.h"
#include "framesmith/utf8.h"

namespace framesmith::text::detail {

// ---------------------------------------------------------------------------------------------
// UTF-8 (the validator itself is framesmith/utf8.h's, shared with events and requests)

namespace {
bool is_cont(unsigned char b) {
  return (b & 0xC0) == 0x80;
}
}  // namespace

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t consumed;
    const std::size_t n = utf8_sequence_length(s, i, consumed);
    if (n) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += consumed;
    }
  }
  return out;
}

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    if (i + n > s.size()) n = s.size() - i;  // defensive; sanitized input never gets here
    char32_t cp = n == 1 ? b0 : (b0 & (0x7F >> n));
    for (std::size_t k = 1; k < n; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    cps.push_back(cp);
    i += n;
  }
  return cps;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ---------------------------------------------------------------------------------------------
// GPT-2 byte alphabet: bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
// themselves; the remaining 68 bytes take U+0100, U+0101, ... in byte order. Every byte thus
// becomes one visible, non-space character and BPE never sees raw control bytes or spaces.

namespace {

bool is_printable_latin1(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

const std::array<char32_t, 256>& byte_code_points() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) t[b] = is_printable_latin1(b) ? char32_t(b) : next++;
    return t;
  }();
  return table;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) append_utf8(t[b], byte_code_points()[b]);
    return t;
  }();
  return table;
}

int unicode_to_byte(char32_t cp) {
  static const std::unordered_map<char32_t, int> inverse = [] {
    std::unordered_map<char32_t, int> m;
    for (int b = 0; b < 256; ++b) m[byte_code_points()[b]] = b;
    return m;
  }();
  auto it = inverse.find(cp);
  return it == inverse.end() ? -1 : it->second;
}

// ---------------------------------------------------------------------------------------------
// PCRE2

struct Regex::Impl {
  pcre2_code* code = nullptr;
  std::string what;
};

Regex::Regex(const std::string& pattern, bool caseless, const std::string& what)
    : impl_(std::make_unique<Impl>()) {
  impl_->what = what;
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (caseless ? PCRE2_CASELESS : 0u);
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                              &err, &err_offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    throw Error(what + ": cannot compile regex \"" + pattern + "\" at offset " +
                std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg));
  }
  // JIT is only a speed-up; without it (e.g. unsupported CPU) the interpreter runs.
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

void Regex::for_each_match(std::string_view text,
                           const std::function<void(std::size_t, std::size_t)>& on_match) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(impl_->code, nullptr), &pcre2_match_data_free);
  if (!md) throw Error(impl_->what + ": out of memory for regex match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t pos = 0;
  // The first call checks the whole subject's UTF-8; later calls skip the check, which would
  // otherwise rescan the rest of the text at every match (quadratic on long prompts).
  uint32_t flags = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(impl_->code, subject, text.size(), pos, flags, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // deep backtracking: retry in the heap interpreter
      rc = pcre2_match(impl_->code, subject, text.size(), pos, flags | PCRE2_NO_JIT, md.get(),
                       nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      throw Error(impl_->what + ": regex match failed at byte " + std::to_string(pos) + ": " +
                  reinterpret_cast<const char*>(msg));
    }
    flags = PCRE2_NO_UTF_CHECK;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const std::size_t begin = ov[0], end = ov[1];
    if (end > begin) {
      on_match(begin, end);
      pos = end;
    } else {  // empty match: step over one whole character
      pos = begin + 1;
      while (pos < text.size() && is_cont(static_cast<unsigned char>(text[pos]))) ++pos;
      if (begin >= text.size()) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary and merge tables

namespace {
// Open-addressing tables stay at most 3/4 full (linear probing is still short there) so that the
// 280k merges of LLaMA-3 fit 512k slots: fewer cache misses while loading.
std::size_t table_size_for(std::size_t n) {
  std::size_t size = 16;
  while (4 * n > 3 * size) size *= 2;
  return size;
}
bool needs_growth(std::size_t count, std::size_t slots) {
  return 4 * (count + 1) > 3 * slots;
}
}  // namespace

std::uint64_t Vocab::hash_of(std::string_view token) {
  // 64-bit FNV-1a, then a multiply so that the low bits (the slot) depend on every byte.
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : token) h = (h ^ c) * 0x100000001b3ull;
  return h * 0x9E3779B97F4A7C15ull;
}

void Vocab::reserve(std::size_t n) {
  keys_.reserve(n);
  ids_.reserve(n);
  if (table_size_for(n) > slots_.size()) rehash(table_size_for(n));
}

std::size_t Vocab::slot_of(std::string_view token, std::uint64_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  const auto tag = static_cast<std::uint32_t>(hash >> 32);
  std::size_t i = static_cast<std::size_t>(hash) & mask;
  // The stored hash bits spare the string comparison (a cache miss) on most wrong slots.
  while (slots_[i].index >= 0 && (slots_[i].tag != tag || keys_[slots_[i].index] != token))
    i = (i + 1) & mask;
  return i;
}

void Vocab::rehash(std::size_t slots) {
  slots_.assign(slots, Slot{});
  for (std::size_t k = 0; k < keys_.size(); ++k) {
    const std::uint64_t h = hash_of(keys_[k]);
    slots_[slot_of(keys_[k], h)] = Slot{static_cast<std::int32_t>(k), std::uint32_t(h >> 32)};
  }
}

void Vocab::insert(std::string token, std::int32_t id) {
  if (needs_growth(keys_.size(), slots_.size())) rehash(table_size_for(keys_.size() + 1));
  const std::uint64_t h = hash_of(token);
  const std::size_t i = slot_of(token, h);
  if (slots_[i].index >= 0) {
    ids_[slots_[i].index] = id;
    return;
  }
  slots_[i] = Slot{static_cast<std::int32_t>(keys_.size()), std::uint32_t(h >> 32)};
  keys_.push_back(std::move(token));
  ids_.push_back(id);
}

std::int32_t Vocab::find(std::string_view token) const {
  if (slots_.empty()) return -1;
  const std::int32_t k = slots_[slot_of(token, hash_of(token))].index;
  return k < 0 ? -1 : ids_[k];
}

void BpeMerges::reserve(std::size_t n) {
  if (table_size_for(n) > slots_.size()) rehash(table_size_for(n));
}

std::size_t BpeMerges::slot_of(std::uint64_t k) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask;
  return i;
}

void BpeMerges::rehash(std::size_t slots) {
  std::vector<Slot> old(slots, Slot{});
  old.swap(slots_);
  for (const Slot& s : old)
    if (s.key != kEmpty) slots_[slot_of(s.key)] = s;
}

void BpeMerges::add(std::int32_t left, std::int32_t right, std::int32_t rank, std::int32_t merged) {
  if (needs_growth(count_, slots_.size())) rehash(table_size_for(count_ + 1));
  const std::uint64_t k = key(left, right);
  Slot& s = slots_[slot_of(k)];
  if (s.key == kEmpty) ++count_;
  s.key = k;
  s.entry = Entry{rank, merged};
}

const BpeMerges::Entry* BpeMerges::find(std::int32_t l, std::int32_t r) const {
  if (slots_.empty()) return nullptr;
  const Slot& s = slots_[slot_of(key(l, r))];
  return s.key == kEmpty ? nullptr : &s.entry;
}

void BpeMerges::apply(std::vector<std::int32_t>& s, bool whole_rank_passes) const {
  const auto n = static_cast<std::int32_t>(s.size());
  if (n < 2 || count_ == 0) return;
  // Symbols form a linked list; a merge keeps the left slot and unlinks the right one. Since a
  // rank belongs to exactly one pair, a queued (rank, pos) is still valid iff the pair now at
  // pos has that rank.
  std::vector<std::int32_t> prev(n), next(n);
  for (std::int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  using Cand = std::pair<std::int32_t, std::int32_t>;  // (rank, pos): smallest first
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  std::vector<Cand> pending;  // pairs formed during the current rank's pass (classic mode)
  auto consider = [&](std::int32_t pos, bool defer) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Entry* e = find(s[pos], s[next[pos]])) {
      if (defer)
        pending.emplace_back(e->rank, pos);
      else
        heap.emplace(e->rank, pos);
    }
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) consider(i, false);

  while (!heap.empty()) {
    const Cand top = heap.top();
    heap.pop();
    const std::int32_t pos = top.second;
    const std::int32_t right = next[pos];
    const Entry* e = right >= 0 && s[pos] >= 0 ? find(s[pos], s[right]) : nullptr;
    if (e && e->rank == top.first) {
      s[pos] = e->merged;
      s[right] = -1;  // unlinked
      next[pos] = next[right];
      if (next[pos] >= 0) prev[next[pos]] = pos;
      consider(prev[pos], whole_rank_passes);
      consider(pos, whole_rank_passes);
    }
    if (!pending.empty() && (heap.empty() || heap.top().first != top.first)) {
      for (const Cand& c : pending) heap.push(c);
      pending.clear();
    }
  }
  std::vector<std::int32_t> out;
  for (std::int32_t i = 0; i >= 0; i = next[i]) out.push_back(s[i]);
  s.swap(out);
}

// ---------------------------------------------------------------------------------------------
// Word cache

bool WordCache::get(const std::string& word, std::vector<std::int32_t>& ids) const {
  if (word.size() > kMaxWordBytes) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = map_.find(word);
  if (it == map_.end()) return false;
  ids = it->second;
  return true;
}

void WordCache::put(const std::string& word, const std::vector<std::int32_t>& ids) {
  if (word.size() > kMaxWordBytes) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (map_.size() >= kMaxEntries) map_.clear();
  map_.emplace(word, ids);
}

// ---------------------------------------------------------------------------------------------

std::string read_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error("cannot open " + what + " " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error("cannot open " + what + " " + path + ": not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + what + " " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read " + what + " " + path);
  return ss.str();
}

nlohmann::json parse_json(const std::string& path, const std::string& what) {
  const std::string text = read_file(path, what);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(what + " " + path + ": malformed JSON: " + e.what());
  }
}

}  // namespace framesmith::text::detail
