// JobFolderLock (framesmith/job_folder.h): flock on <dir>/job.lock, counted per process.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "framesmith/error.h"
#include "framesmith/job_folder.h"

namespace framesmith {
namespace {

struct Held {
  int fd = -1;
  int count = 0;
};

// flock conflicts between two descriptors of one process too, so the process keeps one
// descriptor per folder and counts its holders.
std::mutex& held_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, Held>& held() {
  static std::map<std::string, Held> h;
  return h;
}

std::string holder_of(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "another process" : "process " + pid;
}

}  // namespace

JobFolderLock::JobFolderLock(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the job folder (" + ec.message() + ")");
  key_ = fs::canonical(dir, ec).string();
  if (ec) throw Error(dir + ": cannot resolve the job folder (" + ec.message() + ")");

  const std::lock_guard<std::mutex> lock(held_mutex());
  auto it = held().find(key_);
  if (it != held().end()) {
    ++it->second.count;
    return;
  }
  const std::string path = key_ + "/job.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(path + ": cannot open the job folder's lock (" + std::strerror(errno) + ")");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    const std::string who = holder_of(fd);
    ::close(fd);
    if (e == EWOULDBLOCK)
      throw Error(dir + " is in use by " + who +
                  " (one job folder, one job: wait for it, stop it, or give another --out or "
                  "--job-dir)");
    throw Error(path + ": cannot lock the job folder (" + std::strerror(e) + ")");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid; only the message would be less precise.
  }
  held()[key_] = Held{fd, 1};
}

JobFolderLock::~JobFolderLock() {
  const std::lock_guard<std::mutex> lock(held_mutex());
  auto it = held().find(key_);
  if (it == held().end()) return;
  if (--it->second.count > 0) return;
  // The file stays: removing it would race with a process that opened it and waits to lock it.
  ::flock(it->second.fd, LOCK_UN);
  ::close(it->second.fd);
  held().erase(it);
}

}  // namespace framesmith
