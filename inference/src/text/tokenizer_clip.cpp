#include "text/tokenizer_clip.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framesmith/error.h"
#include "io/files.h"
#include "text/tokenizer_text_clean.h"

namespace framesmith::text {

namespace {

using nlohmann::json;

constexpr const char* kEndOfWord = "</w>";

// A token entry of tokenizer_config.json: "<|endoftext|>" or {"content": "<|endoftext|>", ...}.
std::string token_name(const json& config, const char* key, const std::string& fallback) {
  if (!config.is_object() || !config.contains(key)) return fallback;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return fallback;
}

// Backslash before every ASCII non-alphanumeric character: a literal in PCRE2.
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x80 && !std::isalnum(static_cast<unsigned char>(c)))
      out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

struct ClipTokenizer::Impl {
  std::string dir;
  detail::Vocab vocab;
  std::vector<std::string> id_to_token;
  std::array<std::int32_t, 256> byte_ids{};      // a byte's character inside a word
  std::array<std::int32_t, 256> byte_end_ids{};  // ... as the last character, with "</w>"
  detail::BpeMerges merges;
  std::string bos, eos;
  std::int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
  int model_max_length = 77;
  bool lower_case = true;
  std::unique_ptr<detail::Regex> regex;
  mutable detail::WordCache cache;

  void load_vocab(const std::string& path);
  void load_merges(const std::string& path);
  void load_config(const std::string& path);
  std::int32_t id_of(const std::string& token, const std::string& what) const;

  std::string clean(const std::string& text) const;
  void bpe_word(const std::string& word, std::vector<std::int32_t>& out) const;
  std::vector<std::int32_t> encode_text(const std::string& text) const;
};

// ---------------------------------------------------------------------------------------------
// Loading

void ClipTokenizer::Impl::load_vocab(const std::string& path) {
  const json j = detail::parse_json(path, "CLIP vocab.json");
  if (!j.is_object()) throw Error("CLIP vocab.json " + path + ": top level is not a JSON object");
  vocab.reserve(j.size() * 2);
  std::int32_t max_id = -1;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<std::int64_t>() < 0 ||
        it.value().get<std::int64_t>() > INT32_MAX)
      throw Error("CLIP vocab.json " + path + ": entry \"" + it.key() +
                  "\" is not a non-negative integer id");
    const auto id = static_cast<std::int32_t>(it.value().get<std::int64_t>());
    vocab.insert(it.key(), id);
    max_id = std::max(max_id, id);
  }
  if (vocab.size() == 0) throw Error("CLIP vocab.json " + path + ": the vocabulary is empty");
  id_to_token.assign(std::size_t(max_id + 1), std::string());
  vocab.for_each([&](const std::string& tok, std::int32_t id) { id_to_token[id] = tok; });
}

void ClipTokenizer::Impl::load_merges(const std::string& path) {
  const std::string text = detail::read_file(path, "CLIP merges.txt");
  std::istringstream lines(text);
  std::string line, left, right, extra;
  std::int32_t rank = 0;
  for (std::size_t number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // The first line is a "#version: 0.2" header, which both CLIP and transformers skip.
    if (number == 1 && line.rfind("#version", 0) == 0) continue;
    std::istringstream words(line);
    left.clear();
    right.clear();
    extra.clear();
    words >> left >> right >> extra;
    if (left.empty()) continue;  // blank line (e.g. at the end)
    const std::string where = "CLIP merges.txt " + path + ": line " + std::to_string(number);
    if (right.empty() || !extra.empty())
      throw Error(where + " \"" + line + "\" is not two tokens separated by a space");
    const std::int32_t a = vocab.find(left), b = vocab.find(right), ab = vocab.find(left + right);
    if (a < 0) throw Error(where + ": token \"" + left + "\" is not in vocab.json");
    if (b < 0) throw Error(where + ": token \"" + right + "\" is not in vocab.json");
    if (ab < 0) throw Error(where + ": merged token \"" + left + right + "\" is not in vocab.json");
    merges.add(a, b, rank++, ab);
  }
  if (merges.size() == 0) throw Error("CLIP merges.txt " + path + ": no merges");
}

std::int32_t ClipTokenizer::Impl::id_of(const std::string& token, const std::string& what) const {
  const std::int32_t id = vocab.find(token);
  if (id < 0)
    throw Error("CLIP tokenizer " + dir + ": " + what + " \"" + token + "\" is not in vocab.json");
  return id;
}

void ClipTokenizer::Impl::load_config(const std::string& path) {
  json config = json::object();
  if (io::is_file(path)) config = detail::parse_json(path, "CLIP tokenizer_config.json");
  if (!config.is_object())
    throw Error("CLIP tokenizer_config.json " + path + ": top level is not a JSON object");
  bos = token_name(config, "bos_token", "<|startoftext|>");
  eos = token_name(config, "eos_token", "<|endoftext|>");
  bos_id = id_of(bos, "bos_token");
  eos_id = id_of(eos, "eos_token");
  pad_id = id_of(token_name(config, "pad_token", eos), "pad_token");
  unk_id = id_of(token_name(config, "unk_token", eos), "unk_token");
  if (config.contains("model_max_length") && config["model_max_length"].is_number()) {
    const double m = config["model_max_length"].get<double>();
    // transformers writes a huge number when there is no limit; CLIP's text model has 77.
    if (m >= 2 && m <= 1e6) model_max_length = static_cast<int>(m);
  }
  if (config.contains("do_lower_case") && config["do_lower_case"].is_boolean())
    lower_case = config["do_lower_case"].get<bool>();
}

ClipTokenizer ClipTokenizer::from_folder(const std::string& dir) {
  auto impl = std::make_shared<Impl>();
  impl->dir = dir;
  impl->load_vocab(dir + "/vocab.json");
  impl->load_merges(dir + "/merges.txt");
  impl->load_config(dir + "/tokenizer_config.json");
  for (int b = 0; b < 256; ++b) {
    const std::string& ch = detail::byte_to_unicode()[b];
    const std::int32_t id = impl->vocab.find(ch), end = impl->vocab.find(ch + kEndOfWord);
    impl->byte_ids[b] = id >= 0 ? id : impl->unk_id;
    impl->byte_end_ids[b] = end >= 0 ? end : impl->unk_id;
  }
  // CLIP's pattern (simple_tokenizer.py, re.IGNORECASE), its special tokens taken from the config.
  const std::string pattern = regex_escape(impl->bos) + "|" + regex_escape(impl->eos) +
                              R"(|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";
  impl->regex = std::make_unique<detail::Regex>(pattern, true, "CLIP tokenizer " + dir);
  return ClipTokenizer(impl);
}

// ---------------------------------------------------------------------------------------------
// Encoding

// basic_clean (ftfy, html.unescape twice, strip), whitespace_clean, lower.
std::string ClipTokenizer::Impl::clean(const std::string& text) const {
  std::u32string s = detail::utf8_to_u32(detail::sanitize_utf8(text));
  s = detail::ftfy_lite(s);
  s = detail::html_unescape(detail::html_unescape(s));
  s = detail::collapse_whitespace(s);
  if (lower_case) s = detail::python_lower(s);
  return detail::u32_to_utf8(s);
}

void ClipTokenizer::Impl::bpe_word(const std::string& word, std::vector<std::int32_t>& out) const {
  if (word == bos || word == eos) {  // CLIP's regex keeps these whole; they map to their ids
    out.push_back(word == bos ? bos_id : eos_id);
    return;
  }
  std::vector<std::int32_t> syms;
  if (!cache.get(word, syms)) {
    syms.reserve(word.size());
    for (std::size_t i = 0; i < word.size(); ++i) {
      const auto b = static_cast<unsigned char>(word[i]);
      syms.push_back(i + 1 < word.size() ? byte_ids[b] : byte_end_ids[b]);
    }
    merges.apply(syms, /*whole_rank_passes=*/true);
    cache.put(word, syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
}

std::vector<std::int32_t> ClipTokenizer::Impl::encode_text(const std::string& text) const {
  const std::string cleaned = clean(text);
  std::vector<std::int32_t> ids;
  regex->for_each_match(
      cleaned, [&](std::size_t b, std::size_t e) { bpe_word(cleaned.substr(b, e - b), ids); });
  return ids;
}

Encoding ClipTokenizer::encode(const std::string& text, int max_length, bool pad) const {
  const int length = max_length > 0 ? max_length : impl_->model_max_length;
  const std::vector<std::int32_t> body = impl_->encode_text(text);
  const std::size_t keep = std::min<std::size_t>(body.size(), std::size_t(std::max(0, length - 2)));
  Encoding enc;
  enc.ids.reserve(length);
  enc.ids.push_back(impl_->bos_id);
  enc.ids.insert(enc.ids.end(), body.begin(), body.begin() + keep);
  enc.ids.push_back(impl_->eos_id);
  if (enc.ids.size() > std::size_t(length)) enc.ids.resize(length);  // length < 2
  enc.attention_mask.assign(enc.ids.size(), 1);
  if (pad) {
    enc.ids.resize(length, impl_->pad_id);
    enc.attention_mask.resize(length, 0);
  }
  return enc;
}

std::vector<std::int64_t> ClipTokenizer::bpe_ids(const std::string& text) const {
  const std::vector<std::int32_t> ids = impl_->encode_text(text);
  return std::vector<std::int64_t>(ids.begin(), ids.end());
}

std::string ClipTokenizer::decode(const std::vector<std::int64_t>& ids,
                                  bool skip_special_tokens) const {
  std::string joined;
  for (std::int64_t id : ids) {
    if (id < 0 || std::size_t(id) >= impl_->id_to_token.size()) continue;
    if (skip_special_tokens && (id == impl_->bos_id || id == impl_->eos_id || id == impl_->pad_id))
      continue;
    joined += impl_->id_to_token[id];
  }
  std::string bytes;
  const std::string end = kEndOfWord;
  for (std::size_t i = 0; i < joined.size();) {
    if (joined.compare(i, end.size(), end) == 0) {
      bytes += ' ';
      i += end.size();
      continue;
    }
    std::size_t n = 1;  // one UTF-8 character of the byte alphabet
    while (i + n < joined.size() && (static_cast<unsigned char>(joined[i + n]) & 0xC0) == 0x80) ++n;
    const std::vector<char32_t> cp = detail::decode_utf8(joined.substr(i, n));
    const int b = cp.empty() ? -1 : detail::unicode_to_byte(cp[0]);
    if (b >= 0)
      bytes += static_cast<char>(b);
    else
      bytes += joined.substr(i, n);
    i += n;
  }
  while (!bytes.empty() && bytes.back() == ' ') bytes.pop_back();
  return detail::sanitize_utf8(bytes);
}

std::int64_t ClipTokenizer::bos_id() const {
  return impl_->bos_id;
}
std::int64_t ClipTokenizer::eos_id() const {
  return impl_->eos_id;
}
std::int64_t ClipTokenizer::pad_id() const {
  return impl_->pad_id;
}
int ClipTokenizer::model_max_length() const {
  return impl_->model_max_length;
}
std::int64_t ClipTokenizer::vocab_size() const {
  return static_cast<std::int64_t>(impl_->id_to_token.size());
}

}  // namespace framesmith::text
