#include "layout.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "checksums.h"

namespace framesmith::hub::layout {
namespace {

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool is_hub(const Target& t) {
  return t.layout == Layout::kHubCache;
}

}  // namespace

void check_repo_id(const std::string& repo) {
  const auto slash = repo.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < repo.size() &&
            repo.find('/', slash + 1) == std::string::npos && repo.find("..") == std::string::npos;
  for (char c : repo)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
                c == '/');
  if (!ok) throw Error("\"" + repo + "\" is not a hub repository name (owner/name)");
}

void check_repo_path(const std::string& repo, const std::string& path) {
  bool ok = !path.empty() && path.size() < 1024 && path[0] != '/' && path.back() != '/';
  std::size_t start = 0;
  while (ok && start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    const std::string seg = path.substr(start, end - start);
    ok = !seg.empty() && seg != "." && seg != "..";
    start = end + 1;
  }
  for (char c : path) ok = ok && c != '\\' && c != '\0' && static_cast<unsigned char>(c) >= 0x20;
  if (!ok)
    throw Error(repo + ": the hub listed a file named \"" + path +
                "\", which is not a safe relative path; nothing was downloaded");
}

std::string repo_folder(const std::string& cache, const std::string& repo) {
  std::string dir = cache + "/models--";
  for (char ch : repo) dir += (ch == '/') ? std::string("--") : std::string(1, ch);
  return dir;
}

std::string local_path(const Target& t, const RemoteFile& f, const std::string& plain_root) {
  if (is_hub(t)) return repo_folder(t.dir, f.repo) + "/snapshots/" + f.commit + "/" + f.path;
  return t.dir + "/" + (plain_root.empty() ? f.path : plain_root + "/" + f.path);
}

std::string content_path(const Target& t, const RemoteFile& f) {
  if (is_hub(t)) return repo_folder(t.dir, f.repo) + "/blobs/" + f.etag;
  return f.local_path;
}

std::string partial_path(const Target& t, const RemoteFile& f) {
  if (is_hub(t)) return content_path(t, f) + ".incomplete";
  return t.dir + "/.download/" + f.etag + ".incomplete";
}

std::string lock_path(const Target& t, const RemoteFile& f) {
  if (is_hub(t)) {
    const std::string folder = repo_folder(t.dir, f.repo);
    return t.dir + "/.locks/" + folder.substr(folder.find_last_of('/') + 1) + "/" + f.etag +
           ".lock";
  }
  return t.dir + "/.download/" + f.etag + ".lock";
}

std::int64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<std::int64_t>(st.st_size);
}

// The snapshot entry is followed to its blob: a dangling link or a short blob is not installed.
bool is_installed(const Target&, const RemoteFile& f) {
  return file_size(f.local_path) == static_cast<std::int64_t>(f.size_bytes);
}

void make_dirs(const std::string& dir) {
  if (dir.empty()) return;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      throw Error(sys_error("cannot create folder", part));
  }
}

void link_snapshot(const Target& t, const RemoteFile& f) {
  make_dirs(parent_of(f.local_path));
  // ../../blobs/<etag> from snapshots/<commit>/, one more ../ per folder inside the repository.
  std::string target = "../../";
  for (char c : f.path)
    if (c == '/') target += "../";
  target += "blobs/" + f.etag;
  // A link made by hand beside ours is replaced through a temporary name, never half-made.
  const std::string tmp = f.local_path + ".framesmith-link";
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0)
    throw Error(sys_error("cannot create the link", tmp));
  if (::rename(tmp.c_str(), f.local_path.c_str()) != 0)
    throw Error(sys_error("cannot move the link into place at", f.local_path));
}

void install(const Target& t, const RemoteFile& f) {
  const std::string from = partial_path(t, f);
  const std::string to = content_path(t, f);
  make_dirs(parent_of(to));
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw Error(sys_error("cannot move the verified file into place at", to));
  if (is_hub(t)) link_snapshot(t, f);
}

void write_ref(const std::string& cache, const std::string& repo, const std::string& revision,
               const std::string& commit) {
  if (revision == commit) return;  // a commit needs no ref, as huggingface_hub does it
  const std::string path = repo_folder(cache, repo) + "/refs/" + revision;
  make_dirs(parent_of(path));
  const std::string tmp = path + ".framesmith-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;  // no newline: huggingface_hub writes the bare hash
    if (!out) throw Error(sys_error("cannot write", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw Error(sys_error("cannot write", path));
}

std::uint64_t free_bytes_at(const std::string& dir) {
  std::string probe = dir.empty() ? std::string(".") : dir;
  struct statvfs vfs {};
  while (::statvfs(probe.c_str(), &vfs) != 0) {
    if (probe == "/" || probe == "." || probe.empty()) return 0;
    probe = parent_of(probe);
    if (probe.empty()) probe = "/";
  }
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

FileLock::FileLock(const std::string& path) : path_(path) {
  make_dirs(parent_of(path));
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(sys_error("cannot open the lock file", path));
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

bool FileLock::try_lock() {
  return ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
}

}  // namespace framesmith::hub::layout
