// Tokenizer files of the real formats and vocabulary sizes with synthetic content: merges learned
// from prompt words first (so a prompt tokenizes into word-like pieces), then systematic merges of
// existing tokens with single bytes until the vocabulary has the real size.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "framesmith/error.h"
#include "io/files.h"
#include "randmodel/full_model_set.h"
#include "text/tokenizer_bpe.h"
#include "tiny/tiny_parts.h"

namespace framesmith::randmodel {
namespace {

using Merge = std::pair<std::string, std::string>;
const char* kEndOfWord = "</w>";

// A byte-level BPE vocabulary in id order; `have` makes the membership test O(1) (a 128k-entry
// nlohmann::ordered_json looks keys up linearly).
struct Vocab {
  std::vector<std::string> tokens;
  std::unordered_set<std::string> have;
  std::vector<Merge> merges;

  void add(const std::string& t) {
    if (have.insert(t).second) tokens.push_back(t);
  }
  void merge(const std::string& a, const std::string& b) {
    if (have.count(a + b)) return;
    merges.emplace_back(a, b);
    add(a + b);
  }
  // Merges of each token (in id order, the new ones included) with each of `seconds` until the
  // vocabulary has `target` tokens; `extendable` says which tokens may start a merge.
  template <class Pred>
  void fill_to(std::size_t target, const std::vector<std::string>& seconds, Pred extendable) {
    for (std::size_t i = 0; tokens.size() < target && i < tokens.size(); ++i) {
      if (!extendable(tokens[i])) continue;
      for (const std::string& b : seconds) {
        if (tokens.size() >= target) break;
        merge(tokens[i], b);
      }
    }
    if (tokens.size() < target)
      throw Error("synthetic tokenizer: cannot reach its vocabulary size");
  }
  // {"token": id, ...} in id order, written directly (fast for 128k entries).
  std::string json_text(std::int64_t first_id = 0) const {
    std::string s = "{";
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) s += ",";
      s += nlohmann::json(tokens[i]).dump() + ":" + std::to_string(first_id + std::int64_t(i));
    }
    return s + "}";
  }
};

std::vector<std::string> byte_tokens(const std::string& suffix = "") {
  std::vector<std::string> out;
  for (int b = 0; b < 256; ++b) out.push_back(text::detail::byte_to_unicode()[b] + suffix);
  return out;
}

// LLaMA-3's special tokens 128000..128255: the named ones where Meta put them, reserved ones
// elsewhere.
std::vector<std::string> llama3_special_names() {
  std::vector<std::string> names(kLlamaSpecialTokens);
  int reserved = 0;
  for (std::int64_t i = 0; i < kLlamaSpecialTokens; ++i) {
    switch (i) {
      case 0:
        names[i] = "<|begin_of_text|>";
        break;
      case 1:
        names[i] = "<|end_of_text|>";
        break;
      case 6:
        names[i] = "<|start_header_id|>";
        break;
      case 7:
        names[i] = "<|end_header_id|>";
        break;
      case 9:
        names[i] = "<|eot_id|>";
        break;
      default:
        names[i] = "<|reserved_special_token_" + std::to_string(reserved++) + "|>";
    }
  }
  return names;
}

nlohmann::json added_tokens(const std::vector<std::string>& names, std::int64_t first_id) {
  nlohmann::json added = nlohmann::json::array();
  for (std::size_t i = 0; i < names.size(); ++i)
    added.push_back({{"id", first_id + std::int64_t(i)},
                     {"content", names[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  return added;
}

}  // namespace

void write_full_llama_tokenizer(const std::string& dir) {
  std::filesystem::create_directories(dir);
  Vocab v;
  for (const std::string& b : byte_tokens()) v.add(b);
  std::vector<tiny::Word> words;
  for (const auto& w : tiny::corpus_words(false)) words.push_back(tiny::byte_symbols(" " + w));
  for (const auto& [a, b] : tiny::learn_merges(words, 2000)) v.merge(a, b);
  v.fill_to(kLlamaRegularTokens, byte_tokens(), [](const std::string&) { return true; });

  const std::vector<std::string> specials = llama3_special_names();
  nlohmann::ordered_json j = tiny::llama_tokenizer_skeleton(
      added_tokens(specials, kLlamaRegularTokens), kLlamaRegularTokens);
  const std::string sentinel = "@@framesmith-vocab@@";
  j["model"]["vocab"] = sentinel;
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : v.merges) merges.push_back(a + " " + b);
  j["model"]["merges"] = std::move(merges);
  std::string text = j.dump(1);
  text.replace(text.find("\"" + sentinel + "\""), sentinel.size() + 2, v.json_text());
  tiny::write_text(dir + "/tokenizer.json", text);
  tiny::write_json(dir + "/tokenizer_config.json",
                   {{"bos_token", "<|begin_of_text|>"},
                    {"clean_up_tokenization_spaces", true},
                    {"eos_token", "<|end_of_text|>"},
                    {"model_input_names", {"input_ids", "attention_mask"}},
                    {"model_max_length", 1000000000000000019884624838656.0},
                    {"pad_token", "<|end_of_text|>"},
                    {"tokenizer_class", "PreTrainedTokenizerFast"}});
  tiny::write_json(dir + "/special_tokens_map.json", {{"bos_token", "<|begin_of_text|>"},
                                                      {"eos_token", "<|end_of_text|>"},
                                                      {"pad_token", "<|end_of_text|>"}});
}

void write_full_clip_tokenizer(const std::string& dir) {
  std::filesystem::create_directories(dir);
  Vocab v;
  for (const std::string& b : byte_tokens()) v.add(b);
  for (const std::string& b : byte_tokens(kEndOfWord)) v.add(b);
  std::vector<tiny::Word> words;
  for (const auto& w : tiny::corpus_words(true)) {
    tiny::Word s = tiny::byte_symbols(w);
    s.back() += kEndOfWord;
    words.push_back(s);
  }
  for (const auto& [a, b] : tiny::learn_merges(words, 2000)) v.merge(a, b);
  std::vector<std::string> seconds = byte_tokens();
  for (const std::string& b : byte_tokens(kEndOfWord)) seconds.push_back(b);
  // A token that ends a word takes no further merges (CLIP's </w> is always last).
  v.fill_to(kClipVocab - 2, seconds,
            [](const std::string& t) { return !io::ends_with(t, kEndOfWord); });
  v.add("<|startoftext|>");
  v.add("<|endoftext|>");
  tiny::write_text(dir + "/vocab.json", v.json_text());
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : v.merges) merges += a + " " + b + "\n";
  tiny::write_text(dir + "/merges.txt", merges);
  tiny::write_json(dir + "/tokenizer_config.json", {{"add_prefix_space", false},
                                                    {"bos_token", "<|startoftext|>"},
                                                    {"clean_up_tokenization_spaces", true},
                                                    {"do_lower_case", true},
                                                    {"eos_token", "<|endoftext|>"},
                                                    {"errors", "replace"},
                                                    {"model_max_length", 77},
                                                    {"pad_token", "<|endoftext|>"},
                                                    {"tokenizer_class", "CLIPTokenizer"},
                                                    {"unk_token", "<|endoftext|>"}});
  tiny::write_json(dir + "/special_tokens_map.json", {{"bos_token", "<|startoftext|>"},
                                                      {"eos_token", "<|endoftext|>"},
                                                      {"pad_token", "<|endoftext|>"},
                                                      {"unk_token", "<|endoftext|>"}});
}

}  // namespace framesmith::randmodel
