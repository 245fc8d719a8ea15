// Tokenizers: hand-checked ids on the real vocabularies (text-tiny-a), hand-built tokenizer.json
// files for merge order / templates / added tokens, Unicode, truncation and padding, long and
// malformed input, and the errors for missing or broken files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "framesmith/error.h"
#include "text/tokenizer_bpe.h"
#include "text/tokenizer_clip.h"
#include "text/tokenizer_llama.h"
#include "text/tokenizer_text_clean.h"

using framesmith::Error;
using framesmith::text::ClipTokenizer;
using framesmith::text::Encoding;
using framesmith::text::LlamaTokenizer;
namespace detail = framesmith::text::detail;
using Ids = std::vector<std::int64_t>;

namespace {

const std::string kSet = std::string(FRAMESMITH_GOLDEN_DIR) + "/text-tiny-a";

const LlamaTokenizer& llama() {
  static const LlamaTokenizer tok = LlamaTokenizer::from_file(kSet + "/tokenizer/tokenizer.json");
  return tok;
}

const ClipTokenizer& clip() {
  static const ClipTokenizer tok = ClipTokenizer::from_folder(kSet + "/tokenizer_2");
  return tok;
}

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/fs_tok_XXXXXX";
    return std::string(::mkdtemp(tmpl));
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// Message of the Error thrown by f (fails the test if none is thrown).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no framesmith::Error thrown";
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

Ids ids_of(const LlamaTokenizer& t, const std::string& text) {
  return t.encode(text).ids;
}

// A tiny byte-level tokenizer.json: ids 0..255 are the byte alphabet, then the merged tokens.
// Merges (rank order): h e -> he (256), l l -> ll (257), he ll -> hell (258), hell o -> hello
// (259), Ġ w -> Ġw (260); "hel" (261) is in the vocabulary without a merge path to it.
nlohmann::json tiny_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[detail::byte_to_unicode()[b]] = b;
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["hello"] = 259;
  vocab["Ġw"] = 260;
  vocab["hel"] = 261;
  nlohmann::json j;
  j["version"] = "1.0";
  j["model"] = {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", {"h e", "l l", "he ll", "hell o", "Ġ w"}},
                {"ignore_merges", false}};
  j["added_tokens"] = nlohmann::json::array(
      {{{"id", 300}, {"content", "<bos>"}, {"special", true}},
       {{"id", 301}, {"content", "<eos>"}, {"special", true}},
       {{"id", 302}, {"content", "<pad>"}, {"special", true}},
       {{"id", 303}, {"content", "[S]"}, {"special", true}, {"lstrip", true}, {"rstrip", true}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern", {{"Regex", R"( ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["post_processor"] = nullptr;
  j["padding"] = nullptr;
  return j;
}

LlamaTokenizer tiny_tokenizer(const nlohmann::json& j, const std::string& name) {
  return LlamaTokenizer::from_file(write_file(name, j.dump()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shared pieces

TEST(TokenizerDetail, SanitizeUtf8ReplacesEachInvalidSubpart) {
  EXPECT_EQ(detail::sanitize_utf8("abc"), "abc");
  EXPECT_EQ(detail::sanitize_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(detail::sanitize_utf8("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(detail::sanitize_utf8("a\xC3"), "a\xEF\xBF\xBD");                // truncated
  EXPECT_EQ(detail::sanitize_utf8("\xE2\x82x"), "\xEF\xBF\xBDx");            // one subpart
  EXPECT_EQ(detail::sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(detail::sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(detail::sanitize_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(TokenizerDetail, ByteAlphabetIsGpt2s) {
  const auto& t = detail::byte_to_unicode();
  EXPECT_EQ(t[' '], "Ġ");  // U+0120
  EXPECT_EQ(t['\n'], "Ċ");
  EXPECT_EQ(t['a'], "a");
  EXPECT_EQ(t[0xE9], "é");
  for (int b = 0; b < 256; ++b) {
    const auto cps = detail::decode_utf8(t[b]);
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(detail::unicode_to_byte(cps[0]), b);
  }
}

TEST(TokenizerDetail, RankOrderHeapVersusClassicPasses) {
  // x=0 y=1; (x y) -> X=2 at rank 5, (X x) -> Z=3 at rank 1. Word x y x y.
  framesmith::text::detail::BpeMerges m;
  m.add(0, 1, 5, 2);
  m.add(2, 0, 1, 3);
  std::vector<std::int32_t> heap{0, 1, 0, 1}, classic{0, 1, 0, 1};
  m.apply(heap, false);    // HF: the rank-1 pair formed by the first merge wins at once
  m.apply(classic, true);  // CLIP: every (x y) first, then nothing left for rank 1
  EXPECT_EQ(heap, (std::vector<std::int32_t>{3, 1}));
  EXPECT_EQ(classic, (std::vector<std::int32_t>{2, 2}));
}

TEST(TokenizerDetail, PythonTextFunctions) {
  using detail::u32_to_utf8;
  using detail::utf8_to_u32;
  auto lower = [](const std::string& s) {
    return u32_to_utf8(detail::python_lower(utf8_to_u32(s)));
  };
  EXPECT_EQ(lower("ÀÉÎõ ABC Straße"), "àéîõ abc straße");
  EXPECT_EQ(lower("ΟΔΟΣ Σ"), "οδος σ");  // final sigma only after a letter
  EXPECT_EQ(lower("İ"), "i\xCC\x87");
  EXPECT_EQ(lower("ДОМ"), "дом");
  // Expected strings from CPython's html.unescape.
  auto unescape = [](const std::string& s) {
    return u32_to_utf8(detail::html_unescape(utf8_to_u32(s)));
  };
  EXPECT_EQ(unescape("&ampx; &#128; &#0; &#x1F600; &#1; &nbsp &copy2 &apos &apos;"),
            "&x; € \xEF\xBF\xBD \xF0\x9F\x98\x80  \xC2\xA0 ©2 &apos '");
  EXPECT_EQ(unescape("a &lt;b&gt; &amp;amp; &#39; &unknown; & #"), "a <b> &amp; ' &unknown; & #");
  auto ws = [](const std::string& s) {
    return u32_to_utf8(detail::collapse_whitespace(utf8_to_u32(s)));
  };
  EXPECT_EQ(ws("  a \t\n b\xE3\x80\x80"
               "c  "),
            "a b c");
  auto ftfy = [](const std::string& s) { return u32_to_utf8(detail::ftfy_lite(utf8_to_u32(s))); };
  EXPECT_EQ(ftfy("“quotes” don’t ﬁne ＡＢＣ１"), "\"quotes\" don't fine ABC1");
  // ftfy unescapes HTML first (when the text has no '<'), so the quote is straightened too.
  EXPECT_EQ(ftfy("it&rsquo;s &amp; co"), "it's & co");
  EXPECT_EQ(ftfy("<b>it&rsquo;s</b>"), "<b>it&rsquo;s</b>");
}

// ---------------------------------------------------------------------------------------------
// LLaMA-3 tokenizer.json

// Loads the real vocabulary. How long that takes is recorded (load_cpu_seconds, thread CPU time)
// but not bounded: a time limit in a unit test fails on a loaded CI machine, not on a slow loader.
TEST(LlamaTokenizer, LoadsRealVocabulary) {
  auto cpu_seconds = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const double t0 = cpu_seconds();
  const LlamaTokenizer tok = LlamaTokenizer::from_file(kSet + "/tokenizer/tokenizer.json");
  const double seconds = cpu_seconds() - t0;
  EXPECT_EQ(tok.vocab_size(), 128256);
  EXPECT_EQ(tok.num_special_tokens_to_add(), 0);  // this file's post-processor is ByteLevel
  EXPECT_EQ(tok.token_to_id("<|begin_of_text|>"), 128000);
  EXPECT_EQ(tok.token_to_id("Ġworld"), 1917);
  EXPECT_EQ(tok.pad_id(), 128001);  // no pad token in the config: eos <|end_of_text|>
  RecordProperty("load_cpu_seconds", std::to_string(seconds));  // ~0.2 s on the dev machine
}

TEST(LlamaTokenizer, HandCheckedIds) {
  EXPECT_EQ(ids_of(llama(), "Hello, world!"), (Ids{9906, 11, 1917, 0}));
  EXPECT_EQ(ids_of(llama(), "hello the"), (Ids{15339, 279}));
  // \p{N}{1,3}: digits go in groups of three.
  EXPECT_EQ(ids_of(llama(), "12345"), (Ids{4513, 1774}));
  EXPECT_EQ(ids_of(llama(), "<|begin_of_text|>Hello"), (Ids{128000, 9906}));
  EXPECT_EQ(llama().decode({128000, 9906, 11, 1917, 0}), "<|begin_of_text|>Hello, world!");
  EXPECT_EQ(llama().decode({128000, 9906}, /*skip_special_tokens=*/true), "Hello");
}

TEST(LlamaTokenizer, UnicodeRoundTrips) {
  for (const std::string text : {"café naïve résumé Ångström", "東京の夜景と日本語のテキスト",
                                 "emoji 👍🏽🌃🇯🇵 mixed", "Ελληνικά και русский текст",
                                 "tab\tnew\nline\r\n  spaces   ", "\xEF\xBF\xBD"}) {
    const Ids ids = ids_of(llama(), text);
    EXPECT_FALSE(ids.empty()) << text;
    EXPECT_EQ(llama().decode(ids), text);
  }
  // An accented word that is one token of its own.
  EXPECT_EQ(ids_of(llama(), "café").size(), 2u);  // "ca" + "fé" -> checked against the vocab
}

TEST(LlamaTokenizer, EmptyPrompt) {
  EXPECT_TRUE(ids_of(llama(), "").empty());
  const Encoding e = llama().encode("", 8);
  EXPECT_EQ(e.ids, Ids(8, 128001));
  EXPECT_EQ(e.attention_mask, Ids(8, 0));
}

TEST(LlamaTokenizer, TruncatesAndPads) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "word" + std::to_string(i) + " ";
  const Ids full = ids_of(llama(), text);
  ASSERT_GT(full.size(), 300u);
  const Encoding cut = llama().encode(text, 256);
  ASSERT_EQ(cut.ids.size(), 256u);
  EXPECT_EQ(cut.ids, Ids(full.begin(), full.begin() + 256));
  EXPECT_EQ(cut.attention_mask, Ids(256, 1));

  LlamaTokenizer tok = llama();
  tok.set_pad_id(7);
  const Encoding padded = tok.encode("Hello, world!", 6);
  EXPECT_EQ(padded.ids, (Ids{9906, 11, 1917, 0, 7, 7}));
  EXPECT_EQ(padded.attention_mask, (Ids{1, 1, 1, 1, 0, 0}));
  const Encoding unpadded = tok.encode("Hello, world!", 6, true, /*pad=*/false);
  EXPECT_EQ(unpadded.ids, (Ids{9906, 11, 1917, 0}));
}

TEST(LlamaTokenizer, InvalidUtf8BecomesReplacementCharacter) {
  const std::string bad = "ab\xFF\xC3(\xE2\x82";
  const Ids ids = ids_of(llama(), bad);
  EXPECT_EQ(ids, ids_of(llama(), "ab\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD"));
  EXPECT_EQ(ids_of(llama(), std::string("a\0b", 3)).size(), 3u);
}

// 100 000-character texts of the worst kinds for the pre-tokenizer regex and BPE (one long run
// of a letter, of spaces, of digits, of punctuation, mixed): tokenized, decoded back exactly and
// cut at 512. No time bound (a loaded CI machine makes it flaky); a quadratic blow-up would still
// show as this test passing the executable's timeout.
TEST(LlamaTokenizer, VeryLongPromptsRoundTrip) {
  std::mt19937 rng(3);
  const std::vector<std::string> alphabet = {"a", "b", "é", "東", " ",          "  ",  "\n",
                                             "1", "!", "👍", "'s", "<|eot_id|>", "\xFF"};
  std::string mixed;
  while (mixed.size() < 100000) mixed += alphabet[rng() % alphabet.size()];
  for (const std::string& text :
       {std::string(100000, 'a'), std::string(100000, ' '), std::string(100000, '9'),
        std::string(100000, '!'), std::string(50000, ' ') + "x", mixed}) {
    const Ids ids = ids_of(llama(), text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(llama().decode(ids), detail::sanitize_utf8(text));
    const Encoding cut = llama().encode(text, 512);
    EXPECT_EQ(cut.ids.size(), 512u);
  }
}

TEST(LlamaTokenizer, RandomBytesAndThreads) {
  std::mt19937 rng(11);
  std::vector<std::string> texts;
  for (int i = 0; i < 2000; ++i) {
    std::string t(rng() % 64, '\0');
    for (char& c : t) c = static_cast<char>(rng() % 256);
    texts.push_back(t);
  }
  std::vector<Ids> expected;
  for (const std::string& t : texts) {
    expected.push_back(ids_of(llama(), t));
    EXPECT_EQ(llama().decode(expected.back()), detail::sanitize_utf8(t));
  }
  // encode is const and may be called from several threads (the word cache is locked).
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (std::size_t i = 0; i < texts.size(); ++i)
        if (ids_of(llama(), texts[i]) != expected[i]) ++mismatches[k];
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(LlamaTokenizer, MergeOrderOnHandBuiltFile) {
  const LlamaTokenizer tok = tiny_tokenizer(tiny_tokenizer_json(), "tiny.json");
  EXPECT_EQ(ids_of(tok, "hello"), (Ids{259}));
  // h e | l l | he ll | (no "hell he" merge): [hell, he]
  EXPECT_EQ(ids_of(tok, "hellhe"), (Ids{258, 256}));
  EXPECT_EQ(ids_of(tok, "hello world"), (Ids{259, 260, 'o', 'r', 'l', 'd'}));
  // "hel" is a token but no merge reaches it.
  EXPECT_EQ(ids_of(tok, "hel"), (Ids{256, 'l'}));
  EXPECT_EQ(tok.decode(ids_of(tok, "hello world")), "hello world");
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_NE(error_of([&] { tok.encode("x", 4); }).find("no pad token"), std::string::npos);
}

TEST(LlamaTokenizer, IgnoreMergesAndPairMerges) {
  auto j = tiny_tokenizer_json();
  j["model"]["ignore_merges"] = true;
  j["model"]["merges"] =
      nlohmann::json::parse(R"([["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"]])");
  const LlamaTokenizer tok = tiny_tokenizer(j, "tiny_ignore.json");
  EXPECT_EQ(ids_of(tok, "hel"), (Ids{261}));  // whole word in the vocabulary
  EXPECT_EQ(ids_of(tok, "hellhe"), (Ids{258, 256}));
}

TEST(LlamaTokenizer, TemplatePostProcessorTruncationAndAddedTokens) {
  auto j = tiny_tokenizer_json();
  j["post_processor"] = nlohmann::json::parse(R"({
    "type": "Sequence",
    "processors": [
      {"type": "ByteLevel", "add_prefix_space": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [],
       "special_tokens": {"<bos>": {"id": "<bos>", "ids": [300], "tokens": ["<bos>"]}}}]})");
  j["padding"] = {{"pad_id", 302}};
  const LlamaTokenizer tok = tiny_tokenizer(j, "tiny_template.json");
  EXPECT_EQ(tok.num_special_tokens_to_add(), 1);
  EXPECT_EQ(tok.pad_id(), 302);
  EXPECT_EQ(ids_of(tok, "hello"), (Ids{300, 259}));
  EXPECT_EQ(tok.encode("hello", 0, /*add_special_tokens=*/false).ids, (Ids{259}));
  // Truncation leaves room for <bos>: 3 = <bos> + 2 text ids.
  const Encoding cut = tok.encode("hello world", 3);
  EXPECT_EQ(cut.ids, (Ids{300, 259, 260}));
  const Encoding padded = tok.encode("hello", 4);
  EXPECT_EQ(padded.ids, (Ids{300, 259, 302, 302}));
  EXPECT_EQ(padded.attention_mask, (Ids{1, 1, 0, 0}));
  // lstrip / rstrip on [S] swallow the spaces around it; <eos> is matched inside words.
  EXPECT_EQ(ids_of(tok, "hello [S] hello<eos>"), (Ids{300, 259, 303, 259, 301}));
}

TEST(LlamaTokenizer, ErrorsNameFileAndProblem) {
  const std::string missing = temp_dir() + "/nope/tokenizer.json";
  std::string msg = error_of([&] { LlamaTokenizer::from_file(missing); });
  EXPECT_TRUE(contains(msg, missing)) << msg;

  const std::string broken = write_file("broken.json", "{\"model\": {\"vocab\": {\"a\": 0,");
  msg = error_of([&] { LlamaTokenizer::from_file(broken); });
  EXPECT_TRUE(contains(msg, broken) && contains(msg, "malformed JSON")) << msg;

  auto j = tiny_tokenizer_json();
  j["model"]["merges"] = {"h e", "q zz"};
  msg = error_of([&] { tiny_tokenizer(j, "bad_merge.json"); });
  EXPECT_TRUE(contains(msg, "bad_merge.json") && contains(msg, "model.merges[1]") &&
              contains(msg, "\"zz\""))
      << msg;

  j = tiny_tokenizer_json();
  j["model"].erase("vocab");
  msg = error_of([&] { tiny_tokenizer(j, "no_vocab.json"); });
  EXPECT_TRUE(contains(msg, "model.vocab")) << msg;

  j = tiny_tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  msg = error_of([&] { tiny_tokenizer(j, "bad_regex.json"); });
  EXPECT_TRUE(contains(msg, "bad_regex.json") && contains(msg, "regex")) << msg;

  j = tiny_tokenizer_json();
  j["normalizer"] = {{"type", "NFKC"}};
  msg = error_of([&] { tiny_tokenizer(j, "nfkc.json"); });
  EXPECT_TRUE(contains(msg, "normalizer") && contains(msg, "NFKC")) << msg;

  msg = error_of([&] { LlamaTokenizer::from_file(write_file("array.json", "[1, 2]")); });
  EXPECT_TRUE(contains(msg, "array.json")) << msg;
}

// ---------------------------------------------------------------------------------------------
// CLIP

TEST(ClipTokenizer, HandCheckedIds) {
  EXPECT_EQ(clip().bos_id(), 49406);
  EXPECT_EQ(clip().eos_id(), 49407);
  EXPECT_EQ(clip().model_max_length(), 77);
  EXPECT_EQ(clip().bpe_ids("a photo of a cat"), (Ids{320, 1125, 539, 320, 2368}));
  // Lower case, whitespace clean-up, HTML entities and curly quotes are undone first.
  EXPECT_EQ(clip().bpe_ids("  A PHOTO\tof a\n\nCAT  "), clip().bpe_ids("a photo of a cat"));
  EXPECT_EQ(clip().bpe_ids("don’t"), (Ids{847, 713}));
  EXPECT_EQ(clip().bpe_ids("&amp;"), (Ids{261}));
  const Encoding e = clip().encode("a photo of a cat");
  ASSERT_EQ(e.ids.size(), 77u);
  EXPECT_EQ(Ids(e.ids.begin(), e.ids.begin() + 8),
            (Ids{49406, 320, 1125, 539, 320, 2368, 49407, 49407}));
  EXPECT_EQ(e.ids.back(), 49407);
  EXPECT_EQ(std::count(e.attention_mask.begin(), e.attention_mask.end(), 1), 7);
  EXPECT_EQ(clip().decode(e.ids), "a photo of a cat");
}

TEST(ClipTokenizer, Unicode) {
  for (const std::string text :
       {"café naïve résumé", "東京の夜景", "emoji 👍🏽 🌃", "ελληνικά русский"}) {
    const Ids ids = clip().bpe_ids(text);
    EXPECT_FALSE(ids.empty()) << text;
    EXPECT_EQ(clip().decode(ids), text);
  }
  EXPECT_EQ(clip().decode(clip().bpe_ids("CAFÉ ÀÉÎ")), "café àéî");
}

TEST(ClipTokenizer, EmptyPromptAndTruncation) {
  const Encoding empty = clip().encode("");
  EXPECT_EQ(empty.ids[0], 49406);
  EXPECT_EQ(Ids(empty.ids.begin() + 1, empty.ids.end()), Ids(76, 49407));
  EXPECT_EQ(std::count(empty.attention_mask.begin(), empty.attention_mask.end(), 1), 2);

  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  const Encoding cut = clip().encode(text);
  ASSERT_EQ(cut.ids.size(), 77u);
  EXPECT_EQ(cut.ids[0], 49406);
  EXPECT_EQ(Ids(cut.ids.begin() + 1, cut.ids.end() - 1), Ids(75, 2368));
  EXPECT_EQ(cut.ids[76], 49407);
  EXPECT_EQ(cut.attention_mask, Ids(77, 1));
  EXPECT_EQ(clip().encode("a cat", 0, /*pad=*/false).ids, (Ids{49406, 320, 2368, 49407}));
  EXPECT_EQ(clip().encode("a cat", 3).ids, (Ids{49406, 320, 49407}));
}

TEST(ClipTokenizer, LongAndInvalidInput) {
  EXPECT_EQ(clip().bpe_ids("a\xFF\xC3 cat"), clip().bpe_ids("a\xEF\xBF\xBD\xEF\xBF\xBD cat"));
  std::mt19937 rng(5);
  const std::vector<std::string> alphabet = {
      "a", "B", "é", "東", " ", "\t", "1", "!", "👍", "'s", "<|endoftext|>", "&amp;", "\xFF"};
  std::string mixed;
  while (mixed.size() < 100000) mixed += alphabet[rng() % alphabet.size()];
  for (const std::string& text :
       {std::string(100000, 'a'), std::string(100000, ' '), std::string(100000, '!'), mixed}) {
    // No time bound (flaky on a loaded machine); the encoding itself is checked: cut to 77 with
    // the start and end tokens in place.
    const Encoding e = clip().encode(text);
    ASSERT_EQ(e.ids.size(), 77u);
    EXPECT_EQ(e.ids.front(), 49406);
    EXPECT_EQ(e.ids.back(), 49407);
  }
}

TEST(ClipTokenizer, RandomBytes) {
  std::mt19937 rng(13);
  for (int i = 0; i < 2000; ++i) {
    std::string t(rng() % 64, '\0');
    for (char& c : t) c = static_cast<char>(rng() % 256);
    const Encoding e = clip().encode(t);
    ASSERT_EQ(e.ids.size(), 77u);
    for (std::int64_t id : e.ids) ASSERT_TRUE(id >= 0 && id < clip().vocab_size());
  }
}

TEST(ClipTokenizer, ErrorsNameFileAndProblem) {
  const std::string dir = temp_dir() + "/clip";
  ASSERT_EQ(::system(("mkdir -p " + dir).c_str()), 0);
  std::string msg = error_of([&] { ClipTokenizer::from_folder(dir); });
  EXPECT_TRUE(contains(msg, dir + "/vocab.json")) << msg;

  write_file("clip/vocab.json", "{\"a\": 0, \"b\": ");
  msg = error_of([&] { ClipTokenizer::from_folder(dir); });
  EXPECT_TRUE(contains(msg, "vocab.json") && contains(msg, "malformed JSON")) << msg;

  write_file("clip/vocab.json",
             R"({"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "<|startoftext|>": 5,
                 "<|endoftext|>": 6})");
  msg = error_of([&] { ClipTokenizer::from_folder(dir); });
  EXPECT_TRUE(contains(msg, dir + "/merges.txt")) << msg;

  write_file("clip/merges.txt", "#version: 0.2\na b</w>\na c\n");
  msg = error_of([&] { ClipTokenizer::from_folder(dir); });
  EXPECT_TRUE(contains(msg, "line 3") && contains(msg, "\"c\"")) << msg;

  write_file("clip/merges.txt", "#version: 0.2\na b</w>\n");
  const ClipTokenizer tiny = ClipTokenizer::from_folder(dir);
  EXPECT_EQ(tiny.bpe_ids("ab ba"), (Ids{4, 1, 2}));
  EXPECT_EQ(tiny.encode("ab", 4).ids, (Ids{5, 4, 6, 6}));

  write_file("clip/tokenizer_config.json", "{\"eos_token\": \"<|nope|>\"}");
  msg = error_of([&] { ClipTokenizer::from_folder(dir); });
  EXPECT_TRUE(contains(msg, "eos_token") && contains(msg, "<|nope|>")) << msg;
}
