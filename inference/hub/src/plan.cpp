// The download plan: each repository's file list for its revision (one API call), filtered to
// the selected folders, checked, placed in the target layout and compared with what is on disk.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "checksums.h"
#include "hub_internal.h"
#include "layout.h"

namespace framesmith::hub {
namespace {

using nlohmann::json;

// The file a loader looks for first in each folder (model_set.cpp's component_present): it is
// installed last, so that a folder never looks complete while its weights are still missing.
bool is_key_file(const std::string& path) {
  const std::string name = path.substr(path.find_last_of('/') + 1);
  return name == "config.json" || name == "tokenizer.json" || name == "preprocessor_config.json" ||
         name == "vocab.json" || name == "merges.txt";
}

bool selected(const RepoSelection& s, const std::string& path) {
  if (s.folders.empty()) return true;
  for (const auto& f : s.folders)
    if (path.rfind(f + "/", 0) == 0) return true;
  return false;
}

std::string what_listed(const RepoSelection& s) {
  return "the file list of " + s.repo + "@" + s.revision;
}

json fetch_listing(const HubConfig& c, const RepoSelection& s) {
  const std::string url = detail::api_revision_url(c, s.repo, s.revision);
  const http::Response r = detail::request_retrying(c, url, false, true, nullptr, {});
  if (r.transport != http::Transport::kOk)
    throw Error("cannot reach the hub at " + c.endpoint + " for " + what_listed(s) + ": " +
                r.transport_error);
  if (r.status != 200) throw Error(detail::status_message(c, r, s.repo, what_listed(s)));
  try {
    return json::parse(r.body);
  } catch (const json::exception&) {
    throw Error(what_listed(s) + ": the hub's answer is not JSON (is HF_ENDPOINT=" + c.endpoint +
                " a hub?)");
  }
}

std::uint64_t as_size(const json& v, const std::string& where) {
  if (!v.is_number_unsigned()) throw Error(where + ": the hub's file list gives no size");
  return v.get<std::uint64_t>();
}

std::vector<RemoteFile> listed_files(const HubConfig& c, const RepoSelection& s) {
  layout::check_repo_id(s.repo);
  const json j = fetch_listing(c, s);
  const std::string what = what_listed(s);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !j.contains("siblings") ||
      !j["siblings"].is_array())
    throw Error(what + ": the hub's answer has no commit or file list");
  const std::string commit = j["sha"].get<std::string>();
  if (!is_hex(commit, 40))
    throw Error(what + ": the hub gave a malformed commit \"" + commit + "\"");
  std::vector<RemoteFile> files;
  for (const json& sib : j["siblings"]) {
    if (!sib.is_object() || !sib.contains("rfilename") || !sib["rfilename"].is_string())
      throw Error(what + ": a file entry has no name");
    RemoteFile f;
    f.repo = s.repo;
    f.revision = s.revision;
    f.commit = commit;
    f.path = sib["rfilename"].get<std::string>();
    if (!selected(s, f.path)) continue;
    layout::check_repo_path(s.repo, f.path);
    const std::string where = s.repo + ": " + f.path;
    f.size_bytes = as_size(sib.value("size", json()), where);
    f.blob_id = sib.value("blobId", std::string());
    if (sib.contains("lfs") && sib["lfs"].is_object()) {
      f.lfs_sha256 = sib["lfs"].value("sha256", std::string());
      if (!is_hex(f.lfs_sha256, 64))
        throw Error(where + ": the hub gave no SHA-256 for this LFS file");
      f.size_bytes = as_size(sib["lfs"].value("size", json()), where);
    }
    f.etag = f.lfs_sha256.empty() ? f.blob_id : f.lfs_sha256;
    if (!is_hex(f.etag, 40) && !is_hex(f.etag, 64))
      throw Error(where + ": the hub gave no usable blob id (\"" + f.etag + "\")");
    files.push_back(std::move(f));
  }
  for (const auto& folder : s.folders) {
    const bool any = std::any_of(files.begin(), files.end(), [&](const RemoteFile& f) {
      return f.path.rfind(folder + "/", 0) == 0;
    });
    if (!any) throw Error(what + " has no files under " + folder + "/");
  }
  if (files.empty()) throw Error(what + " lists no files");
  return files;
}

}  // namespace

DownloadPlan plan_download(const HubConfig& config, const std::vector<RepoSelection>& selection,
                           const Target& target) {
  DownloadPlan plan;
  plan.target = target;
  std::vector<RemoteFile> keys;
  for (const RepoSelection& s : selection) {
    for (RemoteFile& f : listed_files(config, s)) {
      f.local_path = layout::local_path(target, f, s.plain_root);
      if (layout::is_installed(target, f)) {
        f.installed = true;
        f.present_bytes = f.size_bytes;
      } else if (layout::file_size(layout::content_path(target, f)) ==
                 static_cast<std::int64_t>(f.size_bytes)) {
        f.present_bytes = f.size_bytes;  // the blob is there (another revision, or Python's)
      } else {
        const std::int64_t partial = layout::file_size(layout::partial_path(target, f));
        f.present_bytes = partial > 0 ? std::min<std::uint64_t>(partial, f.size_bytes) : 0;
      }
      (is_key_file(f.path) ? keys : plan.files).push_back(std::move(f));
    }
  }
  for (auto& k : keys) plan.files.push_back(std::move(k));
  for (const RemoteFile& f : plan.files) {
    plan.total_bytes += f.size_bytes;
    plan.missing_bytes += f.size_bytes - f.present_bytes;
  }
  plan.free_bytes = layout::free_bytes_at(target.dir);
  return plan;
}

std::string disk_space_problem(const DownloadPlan& plan) {
  // A margin for the file system's own blocks and whatever else writes there meanwhile.
  const std::uint64_t margin = std::uint64_t(256) << 20;
  if (plan.missing_bytes == 0 || plan.free_bytes >= plan.missing_bytes + margin) return "";
  return "not enough free disk space at " + plan.target.dir + ": the download needs " +
         format_bytes(plan.missing_bytes) + " (+" + format_bytes(margin) + " margin), " +
         format_bytes(plan.free_bytes) + " are free";
}

}  // namespace framesmith::hub
