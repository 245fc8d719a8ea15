// Shared pieces of make-tiny-model: sizes that must agree across components (the transformer's
// text/pooled/image widths are the encoders' hidden sizes) and the file helpers.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/transformer_packed.h"
#include "models/vae.h"
#include "models/weights.h"

namespace framesmith::tiny {

constexpr std::int64_t kTextHidden = 32;    // LLaMA hidden size = transformer text_embed_dim
constexpr std::int64_t kClipHidden = 16;    // CLIP hidden size = pooled_projection_dim
constexpr std::int64_t kSiglipHidden = 24;  // SigLIP hidden size = image_proj_dim

// The tiny transformer's and VAE's configs (tiny_model.cpp).
TransformerConfig tiny_transformer_config();
VaeConfig tiny_vae_config();

void make_dir(const std::string& dir);
void write_json(const std::string& path, const nlohmann::json& j);
void write_component(const std::string& dir, const std::string& weights_name,
                     const nlohmann::json& config, const std::vector<ParamSpec>& specs,
                     std::uint64_t seed);

void write_text(const std::string& path, const std::string& text);

// Byte-level BPE pieces shared by the tiny and the full-size synthetic tokenizers
// (tiny_conditioning.cpp): a word as its byte symbols, greedy merges learned from a small corpus
// of prompt words, and tokenizer.json's LLaMA-3 layout with "vocab" and "merges" left null.
using Word = std::vector<std::string>;
std::vector<std::pair<std::string, std::string>> learn_merges(std::vector<Word> words, int count);
std::vector<std::string> corpus_words(bool lower);
Word byte_symbols(const std::string& s);
nlohmann::ordered_json llama_tokenizer_skeleton(const nlohmann::json& added_tokens,
                                                std::int64_t bos_id);

// Text encoders, tokenizers, image encoder and feature extractor (tiny_conditioning.cpp).
void write_conditioning_components(const std::string& dir, unsigned long long seed);

}  // namespace framesmith::tiny
