// LoRA files as the user handles them, without the model: the LoRA folder, the `FILE[:STRENGTH]`
// argument and what a file's header says. Plain C++ (the studio's widgets use it); reading a
// LoRA onto a transformer is models/lora.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framesmith/pipeline.h"

namespace framesmith {

enum class LoraLayout { kDiffusers = 1, kKohya, kHunyuan };
const char* to_string(LoraLayout layout);

// Strengths beyond this are refused (useful ones lie between -2 and 2; 1e9 is a typing slip).
constexpr double kMaxLoraStrength = 10.0;

// "FILE" or "FILE:STRENGTH" (the last colon, when what follows parses as a number).
LoraSpec parse_lora_argument(const std::string& arg);

// The user's LoRA folder: $XDG_DATA_HOME (or ~/.local/share)/framesmith/loras, where the studio
// keeps its data too; "" when HOME is not set.
std::string default_lora_dir();

// The LoRA files (*.safetensors) in `dir`, sorted; empty when the folder does not exist.
std::vector<std::string> list_lora_files(const std::string& dir);

// `path` as given when it exists; else, for a bare name, `dir`/name (".safetensors" added when
// missing), so that `--lora style:0.8` finds the LoRA folder's style.safetensors. Unchanged when
// neither exists (reading it then says so).
std::string resolve_lora_path(const std::string& path, const std::string& dir);

// What a LoRA file holds, from its header alone (no model needed): for `loras` listings.
struct LoraSummary {
  std::string path;
  std::uint64_t bytes = 0;
  LoraLayout layout = LoraLayout::kDiffusers;
  int modules = 0;
  int rank = 0;
  std::string problem;  // non-empty: not readable as a LoRA, and why
};
LoraSummary summarize_lora_file(const std::string& path);

}  // namespace framesmith
