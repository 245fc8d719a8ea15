#include "text/tokenizer_llama.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string_view>

#include "framesmith/error.h"
#include "io/files.h"

namespace framesmith::text {

namespace {

using nlohmann::json;

// GPT-2's pre-tokenizer regex, used by a ByteLevel pre_tokenizer whose use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// Byte trie over added-token contents for leftmost-longest matching (what HF's Aho-Corasick
// with MatchKind::LeftmostLongest yields), in O(text length x longest token).
class TokenTrie {
 public:
  bool empty() const { return nodes_.size() == 1; }
  void insert(const std::string& s, std::int32_t index) {
    std::int32_t node = 0;
    for (unsigned char c : s) {
      std::int32_t child = find(node, c);
      if (child < 0) {
        child = static_cast<std::int32_t>(nodes_.size());
        nodes_.push_back({});
        nodes_[node].kids.emplace_back(c, child);
      }
      node = child;
    }
    nodes_[node].token = index;
  }
  // Index of the longest token that starts at text[pos] (and its length), or -1.
  std::int32_t longest_at(std::string_view text, std::size_t pos, std::size_t& len) const {
    std::int32_t node = 0, best = -1;
    for (std::size_t i = pos; i < text.size(); ++i) {
      node = find(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        len = i + 1 - pos;
      }
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> kids;
    std::int32_t token = -1;
  };
  std::int32_t find(std::int32_t node, unsigned char c) const {
    for (const auto& [k, child] : nodes_[node].kids)
      if (k == c) return child;
    return -1;
  }
  std::vector<Node> nodes_{1};
};

struct PreStep {
  enum Kind { kSplit, kByteLevel } kind = kSplit;
  std::shared_ptr<detail::Regex> regex;  // Split pattern, or GPT-2's for ByteLevel(use_regex)
  bool keep_matches = true;              // Split: behavior Isolated (true) or Removed (false)
  bool keep_gaps = true;
  bool add_prefix_space = false;  // ByteLevel
};

struct TemplatePart {
  bool is_sequence = false;
  std::vector<std::int32_t> ids;  // the special token's ids when !is_sequence
};
using Template = std::vector<TemplatePart>;

// A piece of the input: either an added token (id >= 0) or text to pre-tokenize.
struct Segment {
  std::size_t begin = 0, end = 0;
  std::int32_t id = -1;
};

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_ascii_word(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Escapes a literal for PCRE2: a backslash before any ASCII non-alphanumeric character is always
// a literal, and \Q..\E would break on a literal "\E".
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) out += '\\';
    out += c;
  }
  return out;
}

std::string dirname_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// j[key] without copying (json::value returns a copy: the whole vocabulary for "model"); a null
// value when j is not an object or has no such key.
const json& member(const json& j, const char* key) {
  static const json null_value;
  if (!j.is_object()) return null_value;
  const auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

}  // namespace

struct LlamaTokenizer::Impl {
  std::string path;
  detail::Vocab vocab;  // byte-level strings -> id
  std::vector<std::string> id_to_token;
  std::vector<char> is_special;
  std::array<std::int32_t, 256> byte_ids{};  // id of each single byte's character, -1 if none
  detail::BpeMerges merges;
  bool ignore_merges = false;
  std::int32_t unk_id = -1;

  std::vector<AddedToken> added;
  TokenTrie raw_trie, normalized_trie;  // non-normalized tokens are split out first, as in HF
  std::vector<PreStep> pre;
  std::vector<Template> post;
  int n_special = 0;

  mutable detail::WordCache cache;

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error("tokenizer.json " + path + ": " + msg);
  }

  // Loading (each throws via fail()).
  class BulkReader;
  void load_model(const json& model, BulkReader& bulk);
  void load_merges(const std::vector<std::pair<std::string, std::string>>& list);
  void load_added_tokens(const json& tokens);
  void load_pre_tokenizer(const json& p, const std::string& where);
  void load_post_processor(const json& p, const std::string& where);
  std::vector<std::int32_t> special_ids(const json& specials, const std::string& name,
                                        const std::string& where) const;

  // Encoding.
  std::vector<Segment> split_added(std::string_view text) const;
  void pretokenize(std::string_view text, std::vector<std::string>& words) const;
  void bpe_word(const std::string& word, std::vector<std::int32_t>& out) const;
  std::vector<std::int32_t> encode_text(const std::string& text) const;
  std::vector<std::int32_t> post_process(std::vector<std::int32_t> ids) const;
};

// ---------------------------------------------------------------------------------------------
// Loading

// Streams model.vocab and model.merges out of the parser into the tables as they are read, so
// that the 128k vocabulary and 280k merges never become a JSON tree (half the load time
// otherwise). Everything else is kept as a normal, small json value. Depths as nlohmann reports
// them: top-level keys 1, keys of "model" 2, vocabulary entries and merges 3.
class LlamaTokenizer::Impl::BulkReader {
 public:
  explicit BulkReader(Impl& impl) : impl_(impl) {}

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    const auto d = static_cast<std::size_t>(depth);
    if (keys_.size() < d + 2) {
      keys_.resize(d + 2);
      in_object_.resize(d + 2, 0);
    }
    switch (event) {
      case json::parse_event_t::object_start:
        in_object_[d + 1] = 1;
        return true;
      case json::parse_event_t::array_start:
        in_object_[d + 1] = 0;
        return true;
      case json::parse_event_t::key:
        keys_[d] = parsed.get<std::string>();
        return !(d == 3 && in("vocab", true));  // false: the entry never enters the tree
      case json::parse_event_t::value:
        if (d == 3 && in("vocab", true)) return take_vocab_entry(parsed);
        if (d == 3 && in("merges", false)) return take_merge(parsed);
        return true;
      case json::parse_event_t::array_end:
      case json::parse_event_t::object_end:
        if (d == 3 && in("vocab", true)) return take_vocab_entry(parsed);  // fails: not an id
        if (d == 3 && in("merges", false)) return take_merge(parsed);
        return true;
    }
    return true;
  }

  std::vector<std::pair<std::string, std::string>> merges;  // in file order = rank order
  std::int32_t max_id = -1;

 private:
  bool in(const char* member, bool object) const {
    return in_object_[2] && in_object_[3] == (object ? 1 : 0) && keys_[1] == "model" &&
           keys_[2] == member;
  }

  bool take_vocab_entry(const json& v) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT32_MAX)
      impl_.fail("model.vocab[\"" + keys_[3] + "\"] is not a non-negative integer id");
    const auto id = static_cast<std::int32_t>(v.get<std::int64_t>());
    impl_.vocab.insert(std::move(keys_[3]), id);
    max_id = std::max(max_id, id);
    return false;  // not kept in the tree
  }

  // Older files write "a b"; newer ones (tokens may contain spaces) write ["a", "b"].
  bool take_merge(const json& m) {
    const std::string where = "model.merges[" + std::to_string(merges.size()) + "]";
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      const auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        impl_.fail(where + " \"" + s + "\" is not two tokens separated by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      impl_.fail(where + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    return false;
  }

  Impl& impl_;
  std::vector<std::string> keys_;  // keys_[d]: the latest key at depth d
  std::vector<char> in_object_;    // in_object_[d]: values at depth d sit in an object
};

void LlamaTokenizer::Impl::load_model(const json& model, BulkReader& bulk) {
  if (!model.is_object()) fail("\"model\" is missing or not an object");
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") fail("model.type \"" + type + "\" is not supported (only BPE)");
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
      model["byte_fallback"].get<bool>())
    fail("model.byte_fallback = true is not supported (byte-level BPE only)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      fail(std::string("model.") + key + " is not supported");
  }
  ignore_merges = model.value("ignore_merges", false);
  // The reader emptied these containers while filling the tables; they must still be there.
  if (!member(model, "vocab").is_object()) fail("model.vocab is missing or not an object");
  if (!member(model, "merges").is_array()) fail("model.merges is missing or not an array");

  id_to_token.assign(std::size_t(bulk.max_id + 1), std::string());
  is_special.assign(id_to_token.size(), 0);
  vocab.for_each([&](const std::string& tok, std::int32_t id) { id_to_token[id] = tok; });
  for (int b = 0; b < 256; ++b) byte_ids[b] = vocab.find(detail::byte_to_unicode()[b]);
  if (member(model, "unk_token").is_string())
    unk_id = vocab.find(member(model, "unk_token").get<std::string>());
  load_merges(bulk.merges);
}

void LlamaTokenizer::Impl::load_merges(
    const std::vector<std::pair<std::string, std::string>>& list) {
  merges.reserve(list.size());
  std::string joined;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& [left, right] = list[i];
    joined.assign(left).append(right);
    const std::int32_t a = vocab.find(left), b = vocab.find(right), ab = vocab.find(joined);
    if (a < 0 || b < 0 || ab < 0) {
      const std::string where = "model.merges[" + std::to_string(i) + "]: ";
      if (a < 0) fail(where + "token \"" + left + "\" is not in model.vocab");
      if (b < 0) fail(where + "token \"" + right + "\" is not in model.vocab");
      fail(where + "merged token \"" + joined + "\" is not in model.vocab");
    }
    merges.add(a, b, static_cast<std::int32_t>(i), ab);
  }
}

void LlamaTokenizer::Impl::load_added_tokens(const json& tokens) {
  if (tokens.is_null()) return;
  if (!tokens.is_array()) fail("added_tokens is not an array");
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const json& t = tokens[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string() || t["id"].get<std::int64_t>() < 0 ||
        t["id"].get<std::int64_t>() > INT32_MAX)
      fail(where + " needs an integer \"id\" and a string \"content\"");
    AddedToken a;
    a.content = t["content"].get<std::string>();
    a.id = static_cast<std::int32_t>(t["id"].get<std::int64_t>());
    a.special = t.value("special", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.single_word = t.value("single_word", false);
    a.normalized = t.value("normalized", !a.special);
    if (a.content.empty()) continue;
    if (std::size_t(a.id) >= id_to_token.size()) {
      id_to_token.resize(std::size_t(a.id) + 1);
      is_special.resize(id_to_token.size(), 0);
    }
    id_to_token[a.id] = a.content;
    is_special[a.id] = a.special;
    (a.normalized ? normalized_trie : raw_trie)
        .insert(a.content, static_cast<std::int32_t>(added.size()));
    added.push_back(std::move(a));
  }
}

void LlamaTokenizer::Impl::load_pre_tokenizer(const json& p, const std::string& where) {
  if (!p.is_object()) fail(where + " is not an object");
  const std::string type = p.value("type", std::string());
  if (type == "Sequence") {
    const auto it = p.find("pretokenizers");
    if (it == p.end() || !it->is_array()) fail(where + ".pretokenizers is not an array");
    for (std::size_t i = 0; i < it->size(); ++i)
      load_pre_tokenizer((*it)[i], where + ".pretokenizers[" + std::to_string(i) + "]");
  } else if (type == "Split") {
    PreStep s;
    s.kind = PreStep::kSplit;
    const json& pat = member(p, "pattern");
    std::string pattern;
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string())
      pattern = pat["Regex"].get<std::string>();
    else if (pat.is_object() && pat.contains("String") && pat["String"].is_string())
      pattern = regex_escape(pat["String"].get<std::string>());
    else
      fail(where + ".pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
    s.regex = std::make_shared<detail::Regex>(pattern, false, "tokenizer.json " + path);
    const std::string behavior = p.value("behavior", std::string("Isolated"));
    const bool invert = p.value("invert", false);
    if (behavior == "Isolated") {
      // matches and the text between them both become pieces; invert changes nothing
    } else if (behavior == "Removed") {
      s.keep_matches = invert;
      s.keep_gaps = !invert;
    } else {
      fail(where + ".behavior \"" + behavior + "\" is not supported (Isolated, Removed)");
    }
    pre.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    PreStep s;
    s.kind = PreStep::kByteLevel;
    s.add_prefix_space = p.value("add_prefix_space", true);
    if (p.value("use_regex", true))
      s.regex = std::make_shared<detail::Regex>(kGpt2Pattern, false, "tokenizer.json " + path);
    pre.push_back(std::move(s));
  } else {
    fail(where + ".type \"" + type + "\" is not supported (Sequence, Split, ByteLevel)");
  }
}

std::vector<std::int32_t> LlamaTokenizer::Impl::special_ids(const json& specials,
                                                            const std::string& name,
                                                            const std::string& where) const {
  if (specials.is_object() && specials.contains(name)) {
    const json& ids = member(specials[name], "ids");
    if (!ids.is_array()) fail(where + ".special_tokens[\"" + name + "\"].ids is not an array");
    std::vector<std::int32_t> out;
    for (const json& id : ids) {
      if (!id.is_number_integer()) fail(where + ".special_tokens[\"" + name + "\"] has a bad id");
      out.push_back(id.get<std::int32_t>());
    }
    return out;
  }
  fail(where + ": special token \"" + name + "\" has no entry in special_tokens");
}

void LlamaTokenizer::Impl::load_post_processor(const json& p, const std::string& where) {
  if (p.is_null()) return;
  if (!p.is_object()) fail(where + " is not an object");
  const std::string type = p.value("type", std::string());
  if (type == "ByteLevel") return;  // only adjusts offsets; ids unchanged
  if (type == "Sequence") {
    const auto it = p.find("processors");
    if (it == p.end() || !it->is_array()) fail(where + ".processors is not an array");
    for (std::size_t i = 0; i < it->size(); ++i)
      load_post_processor((*it)[i], where + ".processors[" + std::to_string(i) + "]");
    return;
  }
  Template t;
  if (type == "TemplateProcessing") {
    const json& single = member(p, "single");
    if (!single.is_array()) fail(where + ".single is not an array");
    const json& specials = member(p, "special_tokens");
    for (const json& piece : single) {
      TemplatePart part;
      if (piece.is_object() && piece.contains("Sequence")) {
        part.is_sequence = true;
      } else if (piece.is_object() && piece.contains("SpecialToken") &&
                 piece["SpecialToken"].contains("id") && piece["SpecialToken"]["id"].is_string()) {
        part.ids = special_ids(specials, piece["SpecialToken"]["id"].get<std::string>(), where);
      } else if (piece.is_string()) {  // the "$A" / "[CLS]:0" shorthand
        const std::string s =
            piece.get<std::string>().substr(0, piece.get<std::string>().find(':'));
        if (s == "$A" || s == "$0" || s == "$")
          part.is_sequence = true;
        else
          part.ids = special_ids(specials, s, where);
      } else {
        fail(where + ".single has an item that is neither Sequence nor SpecialToken");
      }
      t.push_back(std::move(part));
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    const json& cls = member(p, "cls");
    const json& sep = member(p, "sep");
    if (!cls.is_array() || cls.size() != 2 || !sep.is_array() || sep.size() != 2 ||
        !cls[1].is_number_integer() || !sep[1].is_number_integer())
      fail(where + ".cls / .sep are not [token, id] pairs");
    t = {TemplatePart{false, {cls[1].get<std::int32_t>()}}, TemplatePart{true, {}},
         TemplatePart{false, {sep[1].get<std::int32_t>()}}};
  } else {
    fail(where + ".type \"" + type +
         "\" is not supported (TemplateProcessing, ByteLevel, Sequence, Roberta/BertProcessing)");
  }
  for (const auto& part : t) n_special += static_cast<int>(part.ids.size());
  post.push_back(std::move(t));
}

LlamaTokenizer LlamaTokenizer::from_file(const std::string& tokenizer_json) {
  auto impl = std::make_shared<Impl>();
  impl->path = tokenizer_json;
  const std::string text = detail::read_file(tokenizer_json, "tokenizer.json");
  Impl::BulkReader bulk(*impl);
  json j;
  try {
    j = json::parse(text, std::ref(bulk));
  } catch (const json::parse_error& e) {
    impl->fail(std::string("malformed JSON: ") + e.what());
  }
  std::int64_t pad = -1;
  try {
    if (!j.is_object()) impl->fail("top level is not a JSON object");
    impl->load_model(member(j, "model"), bulk);
    impl->load_added_tokens(member(j, "added_tokens"));
    const json& norm = member(j, "normalizer");
    if (!norm.is_null() &&
        !(norm.value("type", std::string()) == "Sequence" && member(norm, "normalizers").empty()))
      impl->fail("normalizer \"" + norm.value("type", std::string("?")) +
                 "\" is not supported (only none)");
    impl->load_pre_tokenizer(member(j, "pre_tokenizer"), "pre_tokenizer");
    const bool byte_level = std::any_of(impl->pre.begin(), impl->pre.end(), [](const PreStep& s) {
      return s.kind == PreStep::kByteLevel;
    });
    if (!byte_level) impl->fail("pre_tokenizer has no ByteLevel step (byte-level BPE only)");
    impl->load_post_processor(member(j, "post_processor"), "post_processor");
    const json& padding = member(j, "padding");
    if (padding.is_object() && padding.contains("pad_id") && padding["pad_id"].is_number_integer())
      pad = padding["pad_id"].get<std::int64_t>();
  } catch (const json::exception& e) {
    impl->fail(std::string("unexpected JSON content: ") + e.what());
  }

  LlamaTokenizer tok(impl, pad);
  // transformers keeps the pad/eos token names in tokenizer_config.json next to the file.
  const std::string config = dirname_of(tokenizer_json) + "/tokenizer_config.json";
  if (pad < 0 && io::is_file(config)) {
    const json c = detail::parse_json(config, "tokenizer_config.json");
    for (const char* key : {"pad_token", "eos_token"}) {
      const json v = c.is_object() ? c.value(key, json()) : json();
      const std::string name = v.is_string()                            ? v.get<std::string>()
                               : v.is_object() && v.contains("content") ? v.value("content", "")
                                                                        : std::string();
      if (auto id = name.empty() ? std::nullopt : tok.token_to_id(name)) {
        tok.set_pad_id(*id);
        break;
      }
    }
  }
  return tok;
}

// ---------------------------------------------------------------------------------------------
// Encoding

std::vector<Segment> LlamaTokenizer::Impl::split_added(std::string_view text) const {
  std::vector<Segment> segs{Segment{0, text.size(), -1}};
  for (const TokenTrie* trie : {&raw_trie, &normalized_trie}) {
    if (trie->empty()) continue;
    std::vector<Segment> out;
    for (const Segment& seg : segs) {
      if (seg.id >= 0) {
        out.push_back(seg);
        continue;
      }
      std::size_t cut = seg.begin;  // start of the text not yet emitted
      std::size_t pos = seg.begin;
      while (pos < seg.end) {
        std::size_t len = 0;
        const std::int32_t k = trie->longest_at(text.substr(0, seg.end), pos, len);
        if (k < 0) {
          ++pos;
          continue;
        }
        const AddedToken& a = added[k];
        std::size_t b = pos, e = pos + len;
        if (a.single_word && ((b > seg.begin && is_ascii_word(text[b - 1])) ||
                              (e < seg.end && is_ascii_word(text[e])))) {
          ++pos;
          continue;
        }
        if (a.lstrip)
          while (b > cut && is_ascii_space(text[b - 1])) --b;
        if (a.rstrip)
          while (e < seg.end && is_ascii_space(text[e])) ++e;
        if (b > cut) out.push_back(Segment{cut, b, -1});
        out.push_back(Segment{b, e, a.id});
        cut = pos = e;
      }
      if (cut < seg.end) out.push_back(Segment{cut, seg.end, -1});
    }
    segs.swap(out);
  }
  return segs;
}

void LlamaTokenizer::Impl::pretokenize(std::string_view text,
                                       std::vector<std::string>& words) const {
  if (text.empty()) return;
  std::vector<std::string> pieces{std::string(text)};
  std::vector<std::string> next;
  for (const PreStep& step : pre) {
    next.clear();
    for (std::string& piece : pieces) {
      if (step.kind == PreStep::kByteLevel && step.add_prefix_space && piece[0] != ' ')
        piece.insert(piece.begin(), ' ');
      if (!step.regex) {
        next.push_back(std::move(piece));
        continue;
      }
      std::size_t last = 0;
      step.regex->for_each_match(piece, [&](std::size_t b, std::size_t e) {
        if (b > last && step.keep_gaps) next.push_back(piece.substr(last, b - last));
        if (step.keep_matches) next.push_back(piece.substr(b, e - b));
        last = e;
      });
      if (last < piece.size() && step.keep_gaps) next.push_back(piece.substr(last));
    }
    pieces.swap(next);
  }
  for (std::string& p : pieces)
    if (!p.empty()) words.push_back(std::move(p));
}

void LlamaTokenizer::Impl::bpe_word(const std::string& word, std::vector<std::int32_t>& out) const {
  if (ignore_merges) {  // a word that is itself a token is taken whole, merges or not
    std::string key;
    for (unsigned char b : word) key += detail::byte_to_unicode()[b];
    const std::int32_t id = vocab.find(key);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<std::int32_t> syms;
  if (!cache.get(word, syms)) {
    syms.reserve(word.size());
    for (unsigned char b : word) {
      // A byte without a token is dropped, or becomes unk, as in HF's BPE.
      if (byte_ids[b] >= 0)
        syms.push_back(byte_ids[b]);
      else if (unk_id >= 0)
        syms.push_back(unk_id);
    }
    merges.apply(syms, /*whole_rank_passes=*/false);
    cache.put(word, syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
}

std::vector<std::int32_t> LlamaTokenizer::Impl::encode_text(const std::string& raw) const {
  const std::string text = detail::sanitize_utf8(raw);
  std::vector<std::int32_t> ids;
  std::vector<std::string> words;
  for (const Segment& seg : split_added(text)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    words.clear();
    pretokenize(std::string_view(text).substr(seg.begin, seg.end - seg.begin), words);
    for (const std::string& w : words) bpe_word(w, ids);
  }
  return ids;
}

std::vector<std::int32_t> LlamaTokenizer::Impl::post_process(std::vector<std::int32_t> ids) const {
  for (const Template& t : post) {
    std::vector<std::int32_t> out;
    out.reserve(ids.size() + 8);
    for (const TemplatePart& part : t) {
      if (part.is_sequence)
        out.insert(out.end(), ids.begin(), ids.end());
      else
        out.insert(out.end(), part.ids.begin(), part.ids.end());
    }
    ids.swap(out);
  }
  return ids;
}

Encoding LlamaTokenizer::encode(const std::string& text, int max_length, bool add_special_tokens,
                                bool pad) const {
  std::vector<std::int32_t> ids = impl_->encode_text(text);
  if (max_length > 0) {
    // HF truncates the sequence so that the special tokens still fit.
    const int budget = std::max(0, max_length - (add_special_tokens ? impl_->n_special : 0));
    if (ids.size() > std::size_t(budget)) ids.resize(budget);
  }
  if (add_special_tokens) ids = impl_->post_process(std::move(ids));
  if (max_length > 0 && ids.size() > std::size_t(max_length)) ids.resize(max_length);

  Encoding enc;
  enc.ids.assign(ids.begin(), ids.end());
  enc.attention_mask.assign(ids.size(), 1);
  if (max_length > 0 && pad && enc.ids.size() < std::size_t(max_length)) {
    if (pad_id_ < 0)
      throw Error("tokenizer.json " + impl_->path +
                  ": padding requested but no pad token is known (set_pad_id)");
    enc.ids.resize(max_length, pad_id_);
    enc.attention_mask.resize(max_length, 0);
  }
  return enc;
}

std::string LlamaTokenizer::decode(const std::vector<std::int64_t>& ids,
                                   bool skip_special_tokens) const {
  std::string bytes;
  for (std::int64_t id : ids) {
    if (id < 0 || std::size_t(id) >= impl_->id_to_token.size()) continue;
    if (skip_special_tokens && impl_->is_special[id]) continue;
    // Characters of the byte alphabet become their bytes; others (added tokens) stay as text.
    const std::string& tok = impl_->id_to_token[id];
    for (char32_t cp : detail::decode_utf8(tok)) {
      const int b = detail::unicode_to_byte(cp);
      if (b >= 0)
        bytes += static_cast<char>(b);
      else
        detail::append_utf8(bytes, cp);
    }
  }
  return detail::sanitize_utf8(bytes);
}

std::optional<std::int64_t> LlamaTokenizer::token_to_id(const std::string& token) const {
  for (const AddedToken& a : impl_->added)
    if (a.content == token) return a.id;
  const std::int32_t id = impl_->vocab.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::int64_t LlamaTokenizer::vocab_size() const {
  return static_cast<std::int64_t>(impl_->id_to_token.size());
}

int LlamaTokenizer::num_special_tokens_to_add() const {
  return impl_->n_special;
}

}  // namespace framesmith::text
