// The LLaMA-3 tokenizer (HunyuanVideo's `tokenizer/`): a byte-level BPE described by a Hugging
// Face tokenizer.json. Follows what the file says: model.vocab / model.merges / ignore_merges,
// added (special) tokens, the pre_tokenizer (Split regex, ByteLevel), the post_processor
// (TemplateProcessing, ByteLevel, Sequence, none). No Python at run time.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/tokenizer_bpe.h"

namespace framesmith::text {

class LlamaTokenizer {
 public:
  // Loads `tokenizer.json`; a `tokenizer_config.json` beside it, if present, supplies the pad
  // token. Throws Error naming the file and the problem (missing file, malformed JSON, unknown
  // token in a merge, unsupported component).
  static LlamaTokenizer from_file(const std::string& tokenizer_json);

  // text -> ids and attention mask. `add_special_tokens` applies the file's post_processor (a
  // template may add <|begin_of_text|>; LLaMA-3's plain ByteLevel one adds nothing). With
  // max_length > 0 the text's ids are cut so that, special tokens included, at most max_length
  // remain, and with `pad` the result is right-padded with pad_id() (mask 0) up to max_length.
  // max_length <= 0: no truncation, no padding. Invalid UTF-8 is read as U+FFFD.
  Encoding encode(const std::string& text, int max_length = 0, bool add_special_tokens = true,
                  bool pad = true) const;

  // ids -> text (byte-level decoding; invalid UTF-8 from partial tokens becomes U+FFFD).
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = false) const;

  // Id of a vocabulary entry or added token (vocabulary strings are in the byte-level alphabet,
  // e.g. "Ġworld"), if present.
  std::optional<std::int64_t> token_to_id(const std::string& token) const;
  std::int64_t vocab_size() const;  // largest id + 1, added tokens included
  // How many ids the post_processor adds to a single sequence.
  int num_special_tokens_to_add() const;

  // Padding id: tokenizer.json "padding.pad_id", else tokenizer_config.json's pad_token, else its
  // eos_token (only masked positions see it); -1 when none is known (encode then throws if asked
  // to pad). set_pad_id overrides it.
  std::int64_t pad_id() const { return pad_id_; }
  void set_pad_id(std::int64_t id) { pad_id_ = id; }

  struct Impl;

 private:
  explicit LlamaTokenizer(std::shared_ptr<const Impl> impl, std::int64_t pad_id)
      : impl_(std::move(impl)), pad_id_(pad_id) {}
  std::shared_ptr<const Impl> impl_;
  std::int64_t pad_id_ = -1;
};

}  // namespace framesmith::text
