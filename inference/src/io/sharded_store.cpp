#include "io/sharded_store.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "framesmith/error.h"
#include "io/files.h"

namespace framesmith::io {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& what, const std::string& msg) {
  throw Error(what + ": " + msg);
}

std::string folder_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// The index as JSON. JSON keeps the last of two equal keys without a word, so a weight_map that
// names one tensor twice (in two shards) is caught while parsing.
json parse_index(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, "cannot read the index");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxHeaderBytes)
    fail(path, "index is " + std::to_string(st.st_size) + " bytes, over the 100 MB limit");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) fail(path, "cannot read the index");
  std::set<std::string> keys;  // keys of the object now being parsed at depth 2
  std::string duplicate;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& v) {
    if (event == json::parse_event_t::object_start && depth == 1) keys.clear();
    if (event == json::parse_event_t::key && depth == 2 && v.is_string() &&
        !keys.insert(v.get<std::string>()).second && duplicate.empty())
      duplicate = v.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(text, on_event);
  } catch (const std::exception& e) {
    fail(path, std::string("index is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) fail(path, "index is not a JSON object");
  if (!duplicate.empty()) fail(path, "index names \"" + duplicate + "\" twice");
  return j;
}

void check_total_size(const json& j, const std::string& path) {
  auto md = j.find("metadata");
  if (md == j.end() || md->is_null()) return;
  if (!md->is_object()) fail(path, "index \"metadata\" is not an object");
  auto ts = md->find("total_size");
  // A count of bytes; informative only (the shards' headers are what is read), so a value that
  // disagrees with them is not refused, but one that is not a byte count is.
  if (ts != md->end() && !ts->is_null() &&
      !(ts->is_number_unsigned() || (ts->is_number_float() && ts->get<double>() >= 0)))
    fail(path, "index \"metadata.total_size\" is not a byte count, got " + ts->dump());
}

void check_shard_name(const std::string& shard, const std::string& path) {
  if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == ".." ||
      shard.find('\\') != std::string::npos)
    fail(path, "shard name \"" + shard + "\" must be a plain file name in the index's folder");
  if (!ends_with(shard, ".safetensors"))
    fail(path, "shard \"" + shard + "\" is not a .safetensors file");
}

}  // namespace

TensorStore open_sharded_index(const std::string& path) {
  const json j = parse_index(path);
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) fail(path, "index has no \"weight_map\" object");
  if (wm->empty()) fail(path, "index \"weight_map\" lists no tensors");
  check_total_size(j, path);
  TensorStore s;
  s.description_ = path;
  const std::string dir = folder_of(path);
  std::map<std::string, std::size_t> shard_index;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      fail(path, "weight_map entry \"" + it.key() + "\" is not a file name");
    const std::string shard = it.value().get<std::string>();
    auto sf = shard_index.find(shard);
    if (sf == shard_index.end()) {
      check_shard_name(shard, path);
      std::shared_ptr<SafeTensorsFile> f;
      try {
        f = SafeTensorsFile::open(dir + "/" + shard);
      } catch (const Error& e) {
        fail(path, "shard \"" + shard + "\" named by the index cannot be used: " + e.what());
      }
      s.files_.push_back(std::move(f));
      sf = shard_index.emplace(shard, s.files_.size() - 1).first;
    }
    if (!s.files_[sf->second]->has(it.key()))
      fail(path, "index says tensor \"" + it.key() + "\" is in " + shard + ", but it is not there");
    s.where_[it.key()] = sf->second;
  }
  // The other direction: every tensor of a shard is the one the index points to, so no tensor
  // sits in two shards (one copy silently ignored) and no shard carries tensors nobody reads.
  std::vector<std::string> shard_names(s.files_.size());
  for (const auto& [shard, i] : shard_index) shard_names[i] = shard;
  for (std::size_t i = 0; i < s.files_.size(); ++i) {
    for (const std::string& name : s.files_[i]->names()) {
      auto w = s.where_.find(name);
      if (w == s.where_.end())
        fail(path, "shard " + shard_names[i] + " holds tensor \"" + name +
                       "\", which the index does not list");
      if (w->second != i)
        fail(path, "tensor \"" + name + "\" is in two shards, " + shard_names[i] + " and " +
                       shard_names[w->second] + " (the index names " + shard_names[w->second] +
                       ")");
    }
  }
  return s;
}

}  // namespace framesmith::io
