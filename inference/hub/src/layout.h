// Where each file of a download lives on disk, in the two layouts:
//   hub cache  <cache>/models--owner--name/blobs/<etag>            the content
//              <cache>/models--owner--name/snapshots/<commit>/<path> -> ../../blobs/<etag>
//              <cache>/models--owner--name/refs/<revision>          the commit, written last
//              <cache>/.locks/models--owner--name/<etag>.lock        (as huggingface_hub locks)
//   plain      <dir>/<plain root>/<path>, partials and locks in <dir>/.download/
// Partials are <content path>.incomplete until verified. Paths from the hub are untrusted:
// check_repo_path refuses anything that could leave the target.
#pragma once
#include <cstdint>
#include <string>

#include "framesmith/hub.h"

namespace framesmith::hub::layout {

void check_repo_path(const std::string& repo, const std::string& path);
void check_repo_id(const std::string& repo);

std::string repo_folder(const std::string& cache, const std::string& repo);
// Where the verified content is kept: the blob (hub cache) or the final file (plain).
std::string content_path(const Target& t, const RemoteFile& f);
std::string partial_path(const Target& t, const RemoteFile& f);
std::string lock_path(const Target& t, const RemoteFile& f);
std::string local_path(const Target& t, const RemoteFile& f, const std::string& plain_root);

// Size of a regular file (following links), -1 when absent.
std::int64_t file_size(const std::string& path);
// The file is where a loader will look for it, with its size.
bool is_installed(const Target& t, const RemoteFile& f);
// Moves the verified partial into place and (hub cache) links the snapshot entry to it.
void install(const Target& t, const RemoteFile& f);
// Makes an already present blob visible in the snapshot (hub cache only).
void link_snapshot(const Target& t, const RemoteFile& f);
void write_ref(const std::string& cache, const std::string& repo, const std::string& revision,
               const std::string& commit);

void make_dirs(const std::string& dir);
std::uint64_t free_bytes_at(const std::string& dir);

// An exclusive advisory lock (flock) on `path`, shared in meaning with huggingface_hub's file
// locks; released when destroyed.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // Tries once; false when another process holds it.
  bool try_lock();

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace framesmith::hub::layout
