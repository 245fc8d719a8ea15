// The tiny model's conditioning components: a LLaMA text encoder and a CLIP-L text encoder with
// tiny byte-level BPE tokenizers (merges learned here from a small corpus, so the files have the
// real formats: tokenizer.json with a Split regex and TemplateProcessing; vocab.json + merges.txt),
// and a SigLIP image encoder with its preprocessor_config.json.
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framesmith/error.h"
#include "models/clip_text.h"
#include "models/llama.h"
#include "models/siglip.h"
#include "text/tokenizer_bpe.h"
#include "tiny/tiny_parts.h"

namespace framesmith::tiny {
namespace {

// Words that make the merges useful for the prompt template and ordinary prompts.
const char* kCorpus =
    "Describe the video by detailing the following aspects: 1. The main content and theme of the "
    "video. 2. The color, shape, size, texture, quantity, text, and spatial relationships of the "
    "objects. 3. Actions, events, behaviors temporal relationships, physical movement changes of "
    "the objects. 4. background environment, light, style and atmosphere. 5. camera angles, "
    "movements, and transitions used in the video: system user The sun sinks behind the hills "
    "while the grass sways in the wind. A girl dances gracefully, with clear movements, full of "
    "charm. A cat walks on the grass, realistic style. The man talks to the camera.";

}  // namespace

// Greedy BPE training: repeatedly merge the most frequent adjacent pair (ties: the smaller pair).
std::vector<std::pair<std::string, std::string>> learn_merges(std::vector<Word> words, int count) {
  std::vector<std::pair<std::string, std::string>> merges;
  for (int m = 0; m < count; ++m) {
    std::map<std::pair<std::string, std::string>, int> freq;
    for (const Word& w : words)
      for (std::size_t i = 0; i + 1 < w.size(); ++i) freq[{w[i], w[i + 1]}]++;
    if (freq.empty()) break;
    auto best = freq.begin();
    for (auto it = freq.begin(); it != freq.end(); ++it)
      if (it->second > best->second) best = it;
    if (best->second < 2) break;
    const auto pair = best->first;
    merges.push_back(pair);
    for (Word& w : words) {
      Word out;
      for (std::size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == pair.first && w[i + 1] == pair.second) {
          out.push_back(pair.first + pair.second);
          ++i;
        } else {
          out.push_back(w[i]);
        }
      }
      w = std::move(out);
    }
  }
  return merges;
}

std::vector<std::string> corpus_words(bool lower) {
  std::vector<std::string> words;
  std::istringstream in(kCorpus);
  std::string w;
  while (in >> w) {
    if (lower)
      std::transform(w.begin(), w.end(), w.begin(),
                     [](unsigned char c) { return std::tolower(c); });
    words.push_back(w);
  }
  return words;
}

Word byte_symbols(const std::string& s) {
  Word w;
  for (unsigned char c : s) w.push_back(text::detail::byte_to_unicode()[c]);
  return w;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw Error(path + ": cannot write");
}

nlohmann::ordered_json llama_tokenizer_skeleton(const nlohmann::json& added_tokens,
                                                std::int64_t bos_id) {
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added_tokens;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"},
         {"add_prefix_space", false},
         {"trim_offsets", true},
         {"use_regex", false}}}}};
  // As HunyuanVideo's tokenizer: <|begin_of_text|> before every sequence.
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 1}}}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens",
       {{"<|begin_of_text|>",
         {{"id", "<|begin_of_text|>"}, {"ids", {bos_id}}, {"tokens", {"<|begin_of_text|>"}}}}}}};
  j["decoder"] = {{"type", "ByteLevel"},
                  {"add_prefix_space", true},
                  {"trim_offsets", true},
                  {"use_regex", true}};
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", true},
                {"vocab", nullptr},
                {"merges", nullptr}};
  return j;
}

namespace {

// LLaMA-3 style tokenizer.json: 256 byte tokens, learned merges, special tokens after them.
std::int64_t write_llama_tokenizer(const std::string& dir) {
  make_dir(dir);
  std::vector<Word> words;
  for (const auto& w : corpus_words(false)) words.push_back(byte_symbols(" " + w));
  const auto merges = learn_merges(words, 200);
  nlohmann::ordered_json vocab;
  std::int64_t id = 0;
  for (int b = 0; b < 256; ++b) vocab[text::detail::byte_to_unicode()[b]] = id++;
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = id++;
    merge_list.push_back(a + " " + b);
  }
  const std::vector<std::string> specials = {"<|begin_of_text|>", "<|end_of_text|>",
                                             "<|start_header_id|>", "<|end_header_id|>",
                                             "<|eot_id|>"};
  nlohmann::json added = nlohmann::json::array();
  const std::int64_t bos = id;
  for (const auto& s : specials)
    added.push_back({{"id", id++},
                     {"content", s},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  nlohmann::ordered_json j = llama_tokenizer_skeleton(added, bos);
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = merge_list;
  write_text(dir + "/tokenizer.json", j.dump(1));
  nlohmann::json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                        {"bos_token", "<|begin_of_text|>"},
                        {"eos_token", "<|end_of_text|>"},
                        {"pad_token", "<|end_of_text|>"},
                        {"model_max_length", 131072}};
  write_json(dir + "/tokenizer_config.json", cfg);
  return id;
}

// CLIP style vocab.json + merges.txt: bytes, bytes with </w>, merges, then the two specials.
std::int64_t write_clip_tokenizer(const std::string& dir, std::int64_t* eos_id) {
  make_dir(dir);
  std::vector<Word> words;
  for (const auto& w : corpus_words(true)) {
    Word s = byte_symbols(w);
    s.back() += "</w>";
    words.push_back(s);
  }
  const auto merges = learn_merges(words, 200);
  nlohmann::ordered_json vocab;
  std::int64_t id = 0;
  for (int b = 0; b < 256; ++b) vocab[text::detail::byte_to_unicode()[b]] = id++;
  for (int b = 0; b < 256; ++b) vocab[text::detail::byte_to_unicode()[b] + "</w>"] = id++;
  std::string merges_txt = "#version: 0.2\n";
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = id++;
    merges_txt += a + " " + b + "\n";
  }
  vocab["<|startoftext|>"] = id++;
  *eos_id = id;
  vocab["<|endoftext|>"] = id++;
  write_text(dir + "/vocab.json", vocab.dump());
  write_text(dir + "/merges.txt", merges_txt);
  write_json(dir + "/tokenizer_config.json", {{"tokenizer_class", "CLIPTokenizer"},
                                              {"model_max_length", 77},
                                              {"do_lower_case", true},
                                              {"bos_token", "<|startoftext|>"},
                                              {"eos_token", "<|endoftext|>"},
                                              {"pad_token", "<|endoftext|>"},
                                              {"unk_token", "<|endoftext|>"}});
  return id;
}

}  // namespace

void write_conditioning_components(const std::string& dir, unsigned long long seed) {
  const std::int64_t llama_vocab = write_llama_tokenizer(dir + "/tokenizer");
  std::int64_t clip_eos = 0;
  const std::int64_t clip_vocab = write_clip_tokenizer(dir + "/tokenizer_2", &clip_eos);

  nlohmann::json llama = {{"architectures", {"LlamaModel"}}, {"model_type", "llama"},
                          {"hidden_size", kTextHidden},      {"intermediate_size", 88},
                          {"num_attention_heads", 4},        {"num_key_value_heads", 2},
                          {"num_hidden_layers", 4},          {"rms_norm_eps", 1e-5},
                          {"rope_theta", 500000.0},          {"vocab_size", llama_vocab},
                          {"max_position_embeddings", 8192}, {"hidden_act", "silu"},
                          {"torch_dtype", "float32"}};
  write_component(dir + "/text_encoder", "model.safetensors", llama,
                  llama_parameter_specs(LlamaConfig::from_json(llama)), seed * 1000 + 3);

  nlohmann::json clip = {{"architectures", {"CLIPTextModel"}},
                         {"model_type", "clip_text_model"},
                         {"hidden_size", kClipHidden},
                         {"intermediate_size", 64},
                         {"num_attention_heads", 2},
                         {"num_hidden_layers", 2},
                         {"max_position_embeddings", 77},
                         {"vocab_size", clip_vocab},
                         {"hidden_act", "quick_gelu"},
                         {"layer_norm_eps", 1e-5},
                         {"bos_token_id", clip_eos - 1},
                         {"eos_token_id", clip_eos},
                         {"pad_token_id", clip_eos},
                         {"projection_dim", kClipHidden},
                         {"torch_dtype", "float32"}};
  write_component(dir + "/text_encoder_2", "model.safetensors", clip,
                  clip_text_parameter_specs(ClipTextConfig::from_json(clip)), seed * 1000 + 4);

  nlohmann::json siglip = {{"architectures", {"SiglipVisionModel"}},
                           {"model_type", "siglip_vision_model"},
                           {"hidden_size", kSiglipHidden},
                           {"intermediate_size", 48},
                           {"num_attention_heads", 2},
                           {"num_hidden_layers", 2},
                           {"image_size", 64},
                           {"patch_size", 16},
                           {"num_channels", 3},
                           {"hidden_act", "gelu_pytorch_tanh"},
                           {"layer_norm_eps", 1e-6},
                           {"torch_dtype", "float32"}};
  write_component(dir + "/image_encoder", "model.safetensors", siglip,
                  siglip_vision_parameter_specs(SiglipVisionConfig::from_json(siglip)),
                  seed * 1000 + 5);
  make_dir(dir + "/feature_extractor");
  write_json(dir + "/feature_extractor/preprocessor_config.json",
             {{"image_processor_type", "SiglipImageProcessor"},
              {"do_resize", true},
              {"size", {{"height", 64}, {"width", 64}}},
              {"resample", 3},
              {"do_rescale", true},
              {"rescale_factor", 1.0 / 255.0},
              {"do_normalize", true},
              {"image_mean", {0.5, 0.5, 0.5}},
              {"image_std", {0.5, 0.5, 0.5}}});
}

}  // namespace framesmith::tiny
