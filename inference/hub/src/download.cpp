// Fetching the plan's files one after another: each to a partial file, resumed with Range after
// a dropped connection or a stopped run, verified, then moved into place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <set>

#include "checksums.h"
#include "hub_internal.h"
#include "layout.h"

namespace framesmith::hub {
namespace {

using Clock = std::chrono::steady_clock;

// Ends a file's fetch early: paused or cancelled.
struct Stopped {};

std::string normalize_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

std::string host_of(const std::string& url) {
  const std::string o = http::origin_of(url);
  const auto p = o.find("://");
  return p == std::string::npos ? url : o.substr(p + 3);
}

// Progress for the caller: the whole plan's bytes, speed over the last five seconds.
class Meter {
 public:
  Meter(const DownloadPlan& plan, const ProgressFn& fn) : fn_(fn) {
    p_.total_bytes = plan.total_bytes;
    for (const RemoteFile& f : plan.files) base_ += f.installed ? f.size_bytes : 0;
  }
  void start_file(std::size_t index, const RemoteFile& f) {
    p_.file_index = index;
    p_.file = f.repo + ": " + f.path;
    p_.file_total_bytes = f.size_bytes;
    p_.file_done_bytes = 0;
  }
  // `file_done`: bytes of the current file on disk.
  void bytes(Phase phase, std::uint64_t file_done, bool force = false) {
    const auto now = Clock::now();
    p_.phase = phase;
    p_.file_done_bytes = file_done;
    p_.done_bytes = base_ + file_done;
    if (phase == Phase::kDownloading) {
      samples_.push_back({now, fetched_ + file_done - file_start_});
      while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(5))
        samples_.pop_front();
      const double dt = std::chrono::duration<double>(now - samples_.front().first).count();
      if (dt > 0.2)
        p_.bytes_per_s = static_cast<double>(samples_.back().second - samples_.front().second) / dt;
      const std::uint64_t left =
          p_.total_bytes > p_.done_bytes ? p_.total_bytes - p_.done_bytes : 0;
      p_.eta_s = p_.bytes_per_s > 0 ? static_cast<double>(left) / p_.bytes_per_s : -1;
    }
    if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    emit();
  }
  void file_offset(std::uint64_t start) { file_start_ = start; }
  void retrying(double wait_s, const std::string& why) {
    p_.phase = Phase::kRetrying;
    p_.retry_in_s = wait_s;
    p_.message = why;
    emit();
    p_.message.clear();
    p_.retry_in_s = 0;
  }
  void finished_file(Phase phase, const RemoteFile& f, const std::string& message,
                     std::uint64_t fetched) {
    fetched_ += fetched;
    base_ += f.size_bytes;
    file_start_ = 0;
    p_.phase = phase;
    p_.file_done_bytes = f.size_bytes;
    p_.done_bytes = base_;
    p_.message = message;
    emit();
    p_.message.clear();
  }

 private:
  void emit() {
    if (fn_) fn_(p_);
  }
  const ProgressFn& fn_;
  Progress p_;
  std::uint64_t base_ = 0;        // bytes of files finished (or present) so far
  std::uint64_t fetched_ = 0;     // bytes fetched over the network for finished files
  std::uint64_t file_start_ = 0;  // the current file's bytes on disk when its transfer began
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
  Clock::time_point last_{};
};

struct Located {
  std::string url;  // where the bytes come from: the CDN a redirect names, or the hub itself
};

class FileFetch {
 public:
  FileFetch(const HubConfig& c, const DownloadPlan& plan, RemoteFile& f, Meter& meter,
            Control* control, DownloadResult& result)
      : c_(c), plan_(plan), f_(f), meter_(meter), control_(control), result_(result) {}

  void run() {
    layout::FileLock lock(layout::lock_path(plan_.target, f_));
    wait_for(lock);
    if (layout::is_installed(plan_.target, f_)) {  // another process finished it meanwhile
      meter_.finished_file(Phase::kSkipped, f_, "already there", 0);
      ++result_.files_present;
      return;
    }
    const std::string partial = layout::partial_path(plan_.target, f_);
    layout::make_dirs(partial.substr(0, partial.find_last_of('/')));
    int failures = 0;
    int bad_digests = 0;
    std::uint64_t fetched = 0;
    std::string came_from;
    std::uint64_t resumed_at = 0;
    bool first = true;
    for (;;) {
      check_stop(partial);
      const Located where = locate();
      came_from = host_of(where.url);
      const std::int64_t before = layout::file_size(partial);
      if (first) resumed_at = before > 0 ? static_cast<std::uint64_t>(before) : 0;
      first = false;
      std::string why;
      const Step step = transfer(where, partial, &fetched, &why);
      if (step == Step::kRetry) {
        // A transfer that moved bytes forward starts the count again: a flaky link that keeps
        // delivering is not a failure.
        failures = layout::file_size(partial) > before ? 1 : failures + 1;
        if (failures >= c_.max_attempts)
          throw Error(f_.repo + ": " + f_.path + ": gave up after " + std::to_string(failures) +
                      " attempts (" + why + "); the partial file (" +
                      format_bytes(std::max<std::int64_t>(0, layout::file_size(partial))) + " of " +
                      format_bytes(f_.size_bytes) + ") is kept and the next run resumes it");
        const double wait = detail::retry_wait_s(c_, last_, failures);
        meter_.retrying(wait, why);
        if (!detail::sleep_unless_stopped(wait, control_)) check_stop(partial);
        continue;
      }
      if (step == Step::kAgain) continue;
      if (verify(partial)) break;
      ::unlink(partial.c_str());
      ++result_.refetched_after_bad_checksum;
      if (++bad_digests >= 2)
        throw Error(f_.repo + ": " + f_.path +
                    ": the downloaded bytes failed verification twice (" + expected_what() +
                    "); nothing was installed. The server or something between "
                    "(a proxy) changes the file");
      meter_.retrying(0, "verification failed, fetching the file again");
    }
    layout::install(plan_.target, f_);
    f_.installed = true;
    f_.present_bytes = f_.size_bytes;
    ++result_.files_fetched;
    result_.fetched_bytes += fetched;
    std::string msg = "fetched " + format_bytes(fetched) + " from " + came_from;
    if (resumed_at > 0) msg += " (resumed at " + format_bytes(resumed_at) + ")";
    meter_.finished_file(Phase::kInstalled, f_, msg, fetched);
  }

 private:
  enum class Step { kDone, kRetry, kAgain };

  void wait_for(layout::FileLock& lock) {
    bool said = false;
    while (!lock.try_lock()) {
      if (!said) meter_.retrying(0.2, "another program is downloading this file; waiting");
      said = true;
      if (!detail::sleep_unless_stopped(0.2, control_)) throw Stopped{};
    }
  }

  void check_stop(const std::string& partial) {
    if (!detail::stop_requested(control_)) return;
    if (control_->cancel.load()) ::unlink(partial.c_str());
    throw Stopped{};
  }

  // HEAD on the resolve URL (by commit: the listing's answer cannot change underneath):
  // relative redirects are followed, an absolute one names the CDN the bytes come from.
  Located locate() {
    std::string url = detail::resolve_url(c_, f_.repo, f_.commit, f_.path);
    const std::string what = f_.repo + ": " + f_.path;
    for (int hops = 0;; ++hops) {
      http::Response r = detail::request_retrying(
          c_, url, true, true, control_,
          [&](double wait, const std::string& why) { meter_.retrying(wait, why); });
      if (r.transport == http::Transport::kStopped) throw Stopped{};
      if (r.transport != http::Transport::kOk)
        throw Error("cannot reach the hub for " + what + ": " + r.transport_error);
      const std::string location = r.header("location");
      if (r.status >= 300 && r.status < 400 && !location.empty()) {
        check_metadata(r, what);
        if (location[0] == '/' && hops < 5) {
          url = c_.endpoint + location;
          continue;
        }
        return {location};
      }
      if (r.status != 200) throw Error(detail::status_message(c_, r, f_.repo, what));
      check_metadata(r, what);
      return {url};
    }
  }

  // The hub's headers describe the file the listing named; anything else is refused.
  void check_metadata(const http::Response& r, const std::string& what) {
    const std::string commit = r.header("x-repo-commit");
    if (!commit.empty() && commit != f_.commit)
      throw Error(what + ": the hub answered for commit " + commit + ", the file list was for " +
                  f_.commit);
    std::string etag = normalize_etag(r.header("x-linked-etag"));
    if (etag.empty()) etag = normalize_etag(r.header("etag"));
    if (!etag.empty() && etag != f_.etag)
      throw Error(what + ": the hub names this file " + etag + ", its file list " + f_.etag);
    std::string size = r.header("x-linked-size");
    if (size.empty() && r.status == 200) size = r.header("content-length");
    if (!size.empty() && size != std::to_string(f_.size_bytes))
      throw Error(what + ": the hub gives " + size + " bytes, its file list " +
                  std::to_string(f_.size_bytes));
  }

  Step transfer(const Located& where, const std::string& partial, std::uint64_t* fetched,
                std::string* why) {
    const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot write " + partial + ": " + std::strerror(errno));
    struct stat st {};
    ::fstat(fd, &st);
    std::uint64_t offset = static_cast<std::uint64_t>(st.st_size);
    if (offset > f_.size_bytes) {  // longer than the file: not a prefix of it
      (void)::ftruncate(fd, 0);
      offset = 0;
    }
    if (offset == f_.size_bytes) {
      ::close(fd);
      return Step::kDone;
    }
    meter_.file_offset(offset);
    const bool token = http::origin_of(where.url) == http::origin_of(c_.endpoint);
    last_ = http::download_to(c_, where.url, token, fd, offset, [&](std::uint64_t written) {
      meter_.bytes(Phase::kDownloading, offset + written);
      return !detail::stop_requested(control_);
    });
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    const http::Response& r = last_;
    *fetched += r.body_bytes;
    if (r.restarted_from_zero) *fetched = r.body_bytes;
    const std::string what = f_.repo + ": " + f_.path;
    switch (r.transport) {
      case http::Transport::kStopped:
        check_stop(partial);
        throw Stopped{};
      case http::Transport::kFatal:
        throw Error("downloading " + what + " into " + partial + " failed: " + r.transport_error +
                    " (" + format_bytes(std::max<std::int64_t>(0, layout::file_size(partial))) +
                    " of " + format_bytes(f_.size_bytes) +
                    " kept as a partial file; the next run resumes it)");
      case http::Transport::kRetryable:
      case http::Transport::kUnreachable:
        *why = "connection lost: " + r.transport_error;
        return Step::kRetry;
      case http::Transport::kOk:
        break;
    }
    if (!synced) throw Error("cannot write " + partial + ": " + std::strerror(errno));
    if (r.status == 416) {  // the partial is not a prefix the server can continue
      ::unlink(partial.c_str());
      *why = "the server refused to resume; starting the file again";
      return Step::kRetry;
    }
    if (detail::is_retryable_status(r.status) || r.status == 403 || r.status == 401) {
      // A CDN's signed link can expire between the HEAD and a resumed GET: locate it again.
      *why = detail::retry_reason(r);
      if ((r.status == 403 || r.status == 401) && token)
        throw Error(detail::status_message(c_, r, f_.repo, what));
      return Step::kRetry;
    }
    if (r.status != 200 && r.status != 206)
      throw Error(detail::status_message(c_, r, f_.repo, what));
    const std::int64_t now = layout::file_size(partial);
    if (now < static_cast<std::int64_t>(f_.size_bytes)) {
      *why = "the connection ended early";
      return Step::kRetry;
    }
    if (now > static_cast<std::int64_t>(f_.size_bytes)) {
      ::unlink(partial.c_str());
      *why = "the server sent more bytes than the file has; starting the file again";
      return Step::kRetry;
    }
    return Step::kDone;
  }

  std::string expected_what() const {
    return f_.lfs_sha256.empty() ? "git blob id " + f_.blob_id : "SHA-256 " + f_.lfs_sha256;
  }

  // LFS files against their SHA-256, the others against their git blob id; when the hub gave
  // neither in a form we can check, the size (already checked) is all there is.
  bool verify(const std::string& partial) {
    if (layout::file_size(partial) != static_cast<std::int64_t>(f_.size_bytes)) return false;
    Digest kind;
    std::string want;
    if (!f_.lfs_sha256.empty()) {
      kind = Digest::kSha256;
      want = f_.lfs_sha256;
    } else if (is_hex(f_.blob_id, 40)) {
      kind = Digest::kGitBlobSha1;
      want = f_.blob_id;
    } else {
      return true;
    }
    meter_.bytes(Phase::kVerifying, 0, true);
    const std::string got = file_digest(partial, kind, [&](std::uint64_t done) {
      meter_.bytes(Phase::kVerifying, done);
      return !detail::stop_requested(control_);
    });
    if (got.empty()) check_stop(partial);  // stopped while hashing: keep (pause) or drop
    return got == want;
  }

  const HubConfig& c_;
  const DownloadPlan& plan_;
  RemoteFile& f_;
  Meter& meter_;
  Control* control_;
  DownloadResult& result_;
  http::Response last_;
};

}  // namespace

DownloadResult run_download(const HubConfig& config, DownloadPlan& plan, const ProgressFn& progress,
                            Control* control) {
  if (const std::string p = disk_space_problem(plan); !p.empty()) throw Error(p);
  DownloadResult result;
  Meter meter(plan, progress);
  for (std::size_t i = 0; i < plan.files.size(); ++i) {
    RemoteFile& f = plan.files[i];
    meter.start_file(i, f);
    if (f.installed) {
      ++result.files_present;
      continue;
    }
    if (detail::stop_requested(control)) {
      result.outcome = control->cancel.load() ? Outcome::kCancelled : Outcome::kPaused;
      return result;
    }
    if (plan.target.layout == Layout::kHubCache &&
        layout::file_size(layout::content_path(plan.target, f)) ==
            static_cast<std::int64_t>(f.size_bytes)) {
      layout::link_snapshot(plan.target, f);  // the blob came with another revision or tool
      f.installed = true;
      ++result.files_present;
      meter.finished_file(Phase::kSkipped, f, "already in the cache", 0);
      continue;
    }
    try {
      FileFetch(config, plan, f, meter, control, result).run();
    } catch (const Stopped&) {
      result.outcome = control && control->cancel.load() ? Outcome::kCancelled : Outcome::kPaused;
      return result;
    }
  }
  // A revision's ref is written once all of its selected files are in: until then the cache
  // keeps pointing at whatever complete snapshot it had.
  if (plan.target.layout == Layout::kHubCache) {
    std::set<std::string> written;
    for (const RemoteFile& f : plan.files)
      if (written.insert(f.repo + "@" + f.revision).second)
        layout::write_ref(plan.target.dir, f.repo, f.revision, f.commit);
  }
  return result;
}

}  // namespace framesmith::hub
