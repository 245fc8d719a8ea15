// Small file-system and JSON-file helpers shared by the loaders (model folders, checkpoints,
// configs, the memory profile).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace framesmith::io {

bool is_file(const std::string& path);  // a regular file (symlinks followed)
bool is_dir(const std::string& path);
bool ends_with(const std::string& s, const std::string& suffix);

// A JSON object from `path`; `what` names the file in messages ("the VAE config"). Error when the
// file cannot be opened, is not JSON, or is not an object.
nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace framesmith::io
