// A test fixture that speaks the part of the Hugging Face hub protocol Framesmith uses, on
// loopback: the revision API (`/api/models/<repo>/revision/<rev>?blobs=true`), `resolve` with
// X-Repo-Commit / ETag / X-Linked-Etag / X-Linked-Size, LFS files redirected to a second server
// (the "CDN", another port) that serves them with Range. Faults are injected per file. Also
// answers proxy-style requests (absolute URLs), so it can stand in for an HTTP proxy.
// Test code: a minimal HTTP/1.1 responder (one request per connection), not a client.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace framesmith::test {

struct HubFile {
  std::string path;
  std::string content;
  bool lfs = false;
  std::uint64_t listed_size = 0;  // non-zero: the size the listing claims (disk-space tests)
};

struct HubRepo {
  std::string id;      // owner/name
  std::string commit;  // 40 hex digits
  std::vector<HubFile> files;
  std::string token;   // non-empty: requests must carry "Bearer <token>"
  bool gated = false;  // refused as the hub refuses gated repositories
};

enum class FaultKind {
  kDropAfter = 1,  // send `bytes` of the body, then close the connection
  kCorrupt,        // flip one byte of the body
  kStatus,         // answer `status` (with `retry_after` when set) instead
  kSlow,           // send the body at `bytes_per_s`
  kIgnoreRange,    // answer a Range request with the whole file (200)
};

struct Fault {
  std::string path;  // the file (its repository path) the fault applies to
  FaultKind kind = FaultKind::kDropAfter;
  int times = 1;  // how many GETs of the file it hits (-1: all)
  std::uint64_t bytes = 0;
  int status = 0;
  std::string retry_after;
  std::uint64_t bytes_per_s = 0;

  static Fault drop(const std::string& path, std::uint64_t after_bytes, int times = 1) {
    return make(path, FaultKind::kDropAfter, times, [&](Fault& f) { f.bytes = after_bytes; });
  }
  static Fault corrupt(const std::string& path, int times = 1) {
    return make(path, FaultKind::kCorrupt, times, [](Fault&) {});
  }
  static Fault status_code(const std::string& path, int code, int times = 1,
                           const std::string& retry_after = "") {
    return make(path, FaultKind::kStatus, times, [&](Fault& f) {
      f.status = code;
      f.retry_after = retry_after;
    });
  }
  static Fault slow(const std::string& path, std::uint64_t bytes_per_s, int times = 1) {
    return make(path, FaultKind::kSlow, times, [&](Fault& f) { f.bytes_per_s = bytes_per_s; });
  }
  static Fault ignore_range(const std::string& path, int times = 1) {
    return make(path, FaultKind::kIgnoreRange, times, [](Fault&) {});
  }

 private:
  template <class Fn>
  static Fault make(const std::string& path, FaultKind kind, int times, Fn&& set) {
    Fault f;
    f.path = path;
    f.kind = kind;
    f.times = times;
    set(f);
    return f;
  }
};

struct LoggedRequest {
  std::string method, target, host;            // target as sent (absolute for proxy requests)
  std::map<std::string, std::string> headers;  // lower-case names
  int port = 0;                                // of the server that got it
};

class HubServer {
 public:
  HubServer();  // starts the hub and its CDN on 127.0.0.1, free ports
  ~HubServer();
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  std::string url() const;      // http://127.0.0.1:<hub port>
  std::string cdn_url() const;  // http://127.0.0.1:<cdn port>
  int port() const;
  void add_repo(HubRepo repo);
  void add_fault(Fault fault);
  std::vector<LoggedRequest> requests() const;
  // GET requests (hub or CDN) for one repository path, in order.
  std::vector<LoggedRequest> gets_of(const std::string& path) const;
  void clear_log();

  // Digests the hub would name the file by.
  static std::string sha256_hex(const std::string& data);
  static std::string git_blob_id(const std::string& data);
  static std::string lfs_pointer(const std::string& data);

  struct Listener;

 private:
  struct Reply;
  void serve(int fd, int port, bool cdn);
  Reply answer(const LoggedRequest& req, bool cdn);
  Reply answer_file(const LoggedRequest& req, const HubFile& f, bool from_cdn);
  const HubFile* find_file(const std::string& repo, const std::string& path,
                           const HubRepo** r) const;

  mutable std::mutex mu_;
  std::vector<HubRepo> repos_;
  std::vector<Fault> faults_;
  std::vector<LoggedRequest> log_;
  std::atomic<bool> stopping_{false};  // slow replies end early when the fixture goes
  std::unique_ptr<Listener> hub_, cdn_;
};

}  // namespace framesmith::test
