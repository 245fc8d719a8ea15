#include "hub_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace framesmith::test {
namespace {

std::string hex(const unsigned char* d, std::size_t n) {
  static const char* h = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += h[d[i] >> 4];
    s += h[d[i] & 15];
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::string url_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

struct HubServer::Listener {
  int fd = -1;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::thread accept_thread;
  std::mutex mu;
  std::vector<std::thread> workers;

  Listener(const std::function<void(int)>& on_conn) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0)
      throw std::runtime_error("hub fixture: cannot listen on loopback");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    accept_thread = std::thread([this, on_conn] {
      while (!stopping) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::lock_guard<std::mutex> lock(mu);
        workers.emplace_back([c, on_conn] {
          on_conn(c);
          ::close(c);
        });
      }
    });
  }
  ~Listener() {
    stopping = true;
    accept_thread.join();
    std::lock_guard<std::mutex> lock(mu);
    for (auto& w : workers) w.join();
    ::close(fd);
  }
};

struct HubServer::Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool head = false;
  std::uint64_t drop_after = UINT64_MAX;
  std::uint64_t bytes_per_s = 0;
};

HubServer::HubServer() {
  hub_ = std::make_unique<Listener>([this](int fd) { serve(fd, hub_->port, false); });
  cdn_ = std::make_unique<Listener>([this](int fd) { serve(fd, cdn_->port, true); });
}

HubServer::~HubServer() {
  stopping_ = true;
  hub_.reset();
  cdn_.reset();
}

std::string HubServer::url() const {
  return "http://127.0.0.1:" + std::to_string(hub_->port);
}
std::string HubServer::cdn_url() const {
  return "http://127.0.0.1:" + std::to_string(cdn_->port);
}
int HubServer::port() const {
  return hub_->port;
}

void HubServer::add_repo(HubRepo repo) {
  std::lock_guard<std::mutex> lock(mu_);
  repos_.push_back(std::move(repo));
}

void HubServer::add_fault(Fault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back(std::move(fault));
}

std::vector<LoggedRequest> HubServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

std::vector<LoggedRequest> HubServer::gets_of(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LoggedRequest> out;
  for (const auto& r : log_) {
    if (r.method != "GET") continue;
    const std::string t = url_decode(r.target);
    const auto q = t.find('?');
    const std::string p = t.substr(0, q);
    if (p.size() >= path.size() && p.compare(p.size() - path.size(), path.size(), path) == 0)
      out.push_back(r);
  }
  return out;
}

void HubServer::clear_log() {
  std::lock_guard<std::mutex> lock(mu_);
  log_.clear();
}

std::string HubServer::sha256_hex(const std::string& data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  return hex(d, sizeof d);
}

std::string HubServer::git_blob_id(const std::string& data) {
  const std::string all = "blob " + std::to_string(data.size()) + std::string(1, '\0') + data;
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(all.data()), all.size(), d);
  return hex(d, sizeof d);
}

std::string HubServer::lfs_pointer(const std::string& data) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256_hex(data) + "\nsize " +
         std::to_string(data.size()) + "\n";
}

const HubFile* HubServer::find_file(const std::string& repo, const std::string& path,
                                    const HubRepo** r) const {
  for (const auto& rp : repos_) {
    if (rp.id != repo) continue;
    *r = &rp;
    for (const auto& f : rp.files)
      if (f.path == path) return &f;
    return nullptr;
  }
  *r = nullptr;
  return nullptr;
}

void HubServer::serve(int fd, int port, bool cdn) {
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos && in.size() < 65536) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    in.append(buf, static_cast<std::size_t>(n));
  }
  LoggedRequest req;
  req.port = port;
  std::istringstream lines(in);
  std::string line;
  std::getline(lines, line);
  std::istringstream first(line);
  first >> req.method >> req.target;
  while (std::getline(lines, line) && line != "\r" && !line.empty()) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    req.headers[lower(line.substr(0, colon))] = v;
  }
  req.host = req.headers.count("host") ? req.headers["host"] : "";
  // A proxy request names the whole URL: serve its path as if it had come directly.
  if (req.target.rfind("http://", 0) == 0) {
    const auto slash = req.target.find('/', 7);
    const std::string authority =
        req.target.substr(7, slash == std::string::npos ? std::string::npos : slash - 7);
    req.target = slash == std::string::npos ? "/" : req.target.substr(slash);
    req.headers["x-fixture-proxied"] = "1";
    // As a proxy it forwards to whichever of the two servers the URL names.
    const std::string cdn_port = ":" + std::to_string(cdn_->port);
    if (authority.size() > cdn_port.size() &&
        authority.compare(authority.size() - cdn_port.size(), cdn_port.size(), cdn_port) == 0)
      cdn = true;
  }
  Reply rep;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rep = answer(req, cdn);
    log_.push_back(req);
  }
  std::string head = "HTTP/1.1 " + std::to_string(rep.status) + " Fixture\r\n";
  bool has_length = false;
  for (const auto& [k, v] : rep.headers) {
    head += k + ": " + v + "\r\n";
    has_length = has_length || lower(k) == "content-length";
  }
  if (!has_length) head += "Content-Length: " + std::to_string(rep.body.size()) + "\r\n";
  head += "Connection: close\r\n\r\n";
  if (!send_all(fd, head.data(), head.size()) || rep.head) return;
  const std::uint64_t n = std::min<std::uint64_t>(rep.body.size(), rep.drop_after);
  const std::size_t chunk = rep.bytes_per_s ? std::max<std::size_t>(1, rep.bytes_per_s / 20) : n;
  for (std::uint64_t off = 0; off < n; off += chunk) {
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, n - off));
    if (!send_all(fd, rep.body.data() + off, len)) return;
    if (rep.bytes_per_s) {
      if (stopping_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (rep.drop_after != UINT64_MAX) ::shutdown(fd, SHUT_RDWR);
}

HubServer::Reply HubServer::answer(const LoggedRequest& req, bool cdn) {
  Reply rep;
  rep.head = req.method == "HEAD";
  const std::string target = url_decode(req.target);
  const std::string path = target.substr(0, target.find('?'));
  if (cdn) {
    // /cdn/<owner>/<name>/<repository path>?sig=...
    if (path.rfind("/cdn/", 0) == 0) {
      const std::string rest = path.substr(5);
      const auto s1 = rest.find('/');
      const auto s2 = rest.find('/', s1 + 1);
      const HubRepo* repo = nullptr;
      if (s1 != std::string::npos && s2 != std::string::npos)
        if (const HubFile* f = find_file(rest.substr(0, s2), rest.substr(s2 + 1), &repo))
          return answer_file(req, *f, true);
    }
    rep.status = 404;
    return rep;
  }
  const auto auth_problem = [&](const HubRepo& r) -> int {
    if (r.token.empty()) return 0;
    const auto it = req.headers.find("authorization");
    if (it == req.headers.end()) return 401;
    return it->second == "Bearer " + r.token ? 0 : 403;
  };
  const auto refuse = [&](int status, const std::string& code) {
    Reply r;
    r.head = rep.head;
    r.status = status;
    r.headers.push_back({"X-Error-Code", code});
    r.headers.push_back({"X-Error-Message", code + " (fixture)"});
    r.body = "{\"error\":\"" + code + "\"}";
    return r;
  };
  if (path.rfind("/api/models/", 0) == 0) {
    const std::string rest = path.substr(12);
    const auto rev_at = rest.find("/revision/");
    const std::string repo_id = rest.substr(0, rev_at);
    const std::string rev = rev_at == std::string::npos ? "main" : rest.substr(rev_at + 10);
    const HubRepo* repo = nullptr;
    find_file(repo_id, "", &repo);
    if (!repo) return refuse(401, "RepoNotFound");
    if (const int a = auth_problem(*repo))
      return refuse(a, repo->gated ? "GatedRepo" : "RepoNotFound");
    if (rev != "main" && rev != repo->commit) return refuse(404, "RevisionNotFound");
    nlohmann::json j;
    j["id"] = repo->id;
    j["sha"] = repo->commit;
    j["siblings"] = nlohmann::json::array();
    for (const auto& f : repo->files) {
      nlohmann::json s;
      s["rfilename"] = f.path;
      const std::uint64_t size = f.listed_size ? f.listed_size : f.content.size();
      if (f.lfs) {
        const std::string ptr = lfs_pointer(f.content);
        s["size"] = size;
        s["blobId"] = git_blob_id(ptr);
        s["lfs"] = {{"sha256", sha256_hex(f.content)}, {"size", size}, {"pointerSize", ptr.size()}};
      } else {
        s["size"] = size;
        s["blobId"] = git_blob_id(f.content);
      }
      j["siblings"].push_back(s);
    }
    rep.headers.push_back({"Content-Type", "application/json"});
    rep.body = j.dump();
    return rep;
  }
  // /<owner>/<name>/resolve/<rev>/<path>
  const auto res = path.find("/resolve/");
  if (res != std::string::npos) {
    const std::string repo_id = path.substr(1, res - 1);
    const std::string rest = path.substr(res + 9);
    const auto slash = rest.find('/');
    const std::string rev = rest.substr(0, slash);
    const std::string file = slash == std::string::npos ? "" : rest.substr(slash + 1);
    const HubRepo* repo = nullptr;
    const HubFile* f = find_file(repo_id, file, &repo);
    if (!repo) return refuse(401, "RepoNotFound");
    if (const int a = auth_problem(*repo))
      return refuse(a, repo->gated ? "GatedRepo" : "RepoNotFound");
    if (rev != "main" && rev != repo->commit) return refuse(404, "RevisionNotFound");
    if (!f) return refuse(404, "EntryNotFound");
    // Rate limits and outages come from the hub itself, on any request for the file.
    for (auto& fault : faults_)
      if (fault.path == f->path && fault.kind == FaultKind::kStatus && fault.times != 0) {
        if (fault.times > 0) --fault.times;
        Reply r = refuse(fault.status, "Fixture");
        if (!fault.retry_after.empty()) r.headers.push_back({"Retry-After", fault.retry_after});
        return r;
      }
    if (!f->lfs) {
      Reply r = answer_file(req, *f, false);
      r.headers.push_back({"X-Repo-Commit", repo->commit});
      return r;
    }
    // LFS: the hub answers with a redirect to its CDN, naming the content in X-Linked-*.
    const std::string ptr = lfs_pointer(f->content);
    rep.status = 302;
    rep.headers.push_back(
        {"Location", cdn_url() + "/cdn/" + repo->id + "/" + f->path + "?X-Amz-Signature=fixture"});
    rep.headers.push_back({"X-Repo-Commit", repo->commit});
    rep.headers.push_back({"ETag", "\"" + git_blob_id(ptr) + "\""});
    rep.headers.push_back({"X-Linked-Etag", "\"" + sha256_hex(f->content) + "\""});
    rep.headers.push_back(
        {"X-Linked-Size", std::to_string(f->listed_size ? f->listed_size : f->content.size())});
    return rep;
  }
  rep.status = 404;
  return rep;
}

HubServer::Reply HubServer::answer_file(const LoggedRequest& req, const HubFile& f, bool) {
  Reply rep;
  rep.head = req.method == "HEAD";
  std::string body = f.content;
  bool honour_range = true;
  const bool get = req.method == "GET";
  for (auto& fault : faults_) {
    if (fault.path != f.path || fault.times == 0 || !get) continue;
    if (fault.kind == FaultKind::kStatus) continue;  // answered by the hub's resolve
    if (fault.times > 0) --fault.times;
    switch (fault.kind) {
      case FaultKind::kDropAfter:
        rep.drop_after = fault.bytes;
        break;
      case FaultKind::kCorrupt:
        body[body.size() / 2] = static_cast<char>(body[body.size() / 2] ^ 0x5a);
        break;
      case FaultKind::kStatus:
        break;
      case FaultKind::kSlow:
        rep.bytes_per_s = fault.bytes_per_s;
        break;
      case FaultKind::kIgnoreRange:
        honour_range = false;
        break;
    }
  }
  if (!f.lfs)
    rep.headers.push_back({"ETag", "\"" + git_blob_id(f.content) + "\""});
  else
    rep.headers.push_back({"ETag", "\"" + sha256_hex(f.content) + "\""});
  rep.headers.push_back({"Accept-Ranges", "bytes"});
  const auto range = req.headers.find("range");
  if (honour_range && range != req.headers.end() && range->second.rfind("bytes=", 0) == 0) {
    const std::uint64_t from = std::stoull(range->second.substr(6));
    if (from >= body.size()) {
      rep.status = 416;
      rep.headers.push_back({"Content-Range", "bytes */" + std::to_string(body.size())});
      rep.body.clear();
      return rep;
    }
    rep.status = 206;
    rep.headers.push_back({"Content-Range", "bytes " + std::to_string(from) + "-" +
                                                std::to_string(body.size() - 1) + "/" +
                                                std::to_string(body.size())});
    body = body.substr(from);
  }
  rep.body = body;
  if (rep.drop_after != UINT64_MAX && rep.drop_after > body.size()) rep.drop_after = UINT64_MAX;
  return rep;
}

}  // namespace framesmith::test
