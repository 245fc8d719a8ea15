// OpenAI CLIP's BPE tokenizer (HunyuanVideo's `tokenizer_2/`): vocab.json + merges.txt (+
// tokenizer_config.json), as clip/simple_tokenizer.py and transformers' CLIPTokenizer with ftfy
// do it: text clean-up, lower case, CLIP's regex, GPT-2 byte alphabet, "</w>" word ends.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer_bpe.h"

namespace framesmith::text {

class ClipTokenizer {
 public:
  // Reads `<dir>/vocab.json`, `<dir>/merges.txt` and, if present, `<dir>/tokenizer_config.json`
  // (model_max_length, bos/eos/pad/unk tokens, do_lower_case). Throws Error naming the file and
  // the problem.
  static ClipTokenizer from_folder(const std::string& dir);

  // <|startoftext|>, the first max_length - 2 BPE ids, <|endoftext|>, then (with `pad`) the pad
  // id up to max_length (mask 0). max_length <= 0 means model_max_length (77). Invalid UTF-8 is
  // read as U+FFFD.
  Encoding encode(const std::string& text, int max_length = 0, bool pad = true) const;

  // The BPE ids of `text` alone: no start/end tokens, no truncation.
  std::vector<std::int64_t> bpe_ids(const std::string& text) const;

  // ids -> text ("</w>" becomes a space; start/end/pad tokens skipped when asked).
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = true) const;

  std::int64_t bos_id() const;
  std::int64_t eos_id() const;
  std::int64_t pad_id() const;
  int model_max_length() const;
  std::int64_t vocab_size() const;

  struct Impl;

 private:
  explicit ClipTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace framesmith::text
