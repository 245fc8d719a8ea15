// The real FramePack model set's layout, sizes and configs (docs/full-size-model-set.md says where
// each fact comes from): what make-random-model --config full writes with random weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "randmodel/component_writer.h"

namespace framesmith::randmodel {

// The weight-bearing components, in the order written: transformer (lllyasviel/FramePackI2V_HY),
// vae, text_encoder, text_encoder_2 (hunyuanvideo-community/HunyuanVideo), image_encoder
// (lllyasviel/flux_redux_bfl).
std::vector<ComponentPlan> full_component_plans();

// The hub's config.json of each component, key for key (full_configs.cpp).
nlohmann::json framepack_transformer_config();
nlohmann::json hunyuan_vae_config();
nlohmann::json llava_llama3_text_encoder_config();
nlohmann::json clip_l_text_encoder_config();
nlohmann::json siglip_so400m_image_encoder_config();
nlohmann::json siglip_preprocessor_config();

// The real vocabulary sizes: LLaMA-3's 128000 BPE tokens + 256 special tokens, CLIP's 49408.
constexpr std::int64_t kLlamaRegularTokens = 128000;
constexpr std::int64_t kLlamaSpecialTokens = 256;
constexpr std::int64_t kClipVocab = 49408;

// tokenizer/ (tokenizer.json, tokenizer_config.json, special_tokens_map.json) and tokenizer_2/
// (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json) in the real formats and
// sizes; the merges are learned from prompt words, then synthetic (full_tokenizers.cpp).
void write_full_llama_tokenizer(const std::string& dir);
void write_full_clip_tokenizer(const std::string& dir);

}  // namespace framesmith::randmodel
