// Shared pieces of make-tiny-model: sizes that must agree across components (the transformer's
// text/pooled/image widths are the encoders' hidden sizes) and the file helpers.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/weights.h"

namespace framesmith::tiny {

constexpr std::int64_t kTextHidden = 32;    // LLaMA hidden size = transformer text_embed_dim
constexpr std::int64_t kClipHidden = 16;    // CLIP hidden size = pooled_projection_dim
constexpr std::int64_t kSiglipHidden = 24;  // SigLIP hidden size = image_proj_dim

void make_dir(const std::string& dir);
void write_json(const std::string& path, const nlohmann::json& j);
void write_component(const std::string& dir, const std::string& weights_name,
                     const nlohmann::json& config, const std::vector<ParamSpec>& specs,
                     std::uint64_t seed);

// Text encoders, tokenizers, image encoder and feature extractor (tiny_conditioning.cpp).
void write_conditioning_components(const std::string& dir, unsigned long long seed);

}  // namespace framesmith::tiny
