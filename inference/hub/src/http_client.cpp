#include "http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace framesmith::hub::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Easy {
  CURL* h = nullptr;
  curl_slist* headers = nullptr;
  Easy() {
    global_init();
    h = curl_easy_init();
    if (!h) throw Error("could not start an HTTP client (curl_easy_init failed)");
  }
  ~Easy() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
  void add_header(const std::string& line) { headers = curl_slist_append(headers, line.c_str()); }
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Each response of a redirect chain starts with its status line: only the last one's headers
// are kept.
std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  const std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    r->headers.clear();
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string::npos)
    r->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  return size * n;
}

struct MemorySink {
  Response* r;
  std::size_t max;
};

std::size_t on_memory_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<MemorySink*>(user);
  const std::size_t bytes = size * n;
  if (s->r->body.size() + bytes > s->max) return 0;  // too large: a write error ends it
  s->r->body.append(data, bytes);
  return bytes;
}

void common_options(Easy& e, const HubConfig& config, const std::string& url, bool send_token,
                    Response& r) {
  curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT, config.connect_timeout_s);
  curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_TIME, config.stall_timeout_s);
  curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e.h, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(e.h, CURLOPT_SSL_VERIFYPEER, config.verify_tls ? 1L : 0L);
  curl_easy_setopt(e.h, CURLOPT_SSL_VERIFYHOST, config.verify_tls ? 2L : 0L);
  curl_easy_setopt(e.h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e.h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (!config.user_agent.empty())
    curl_easy_setopt(e.h, CURLOPT_USERAGENT, config.user_agent.c_str());
  // The hub's ETags and sizes describe the stored bytes: no transfer encoding may change them.
  e.add_header("Accept-Encoding: identity");
  if (send_token && !config.token.empty()) e.add_header("Authorization: Bearer " + config.token);
}

// curl's result as what a caller can do about it.
Transport classify(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return Transport::kOk;
    case CURLE_ABORTED_BY_CALLBACK:
      return Transport::kStopped;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
      return Transport::kUnreachable;
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
      return Transport::kRetryable;
    default:
      return Transport::kFatal;
  }
}

void finish(Easy& e, CURLcode code, Response& r, const char* errbuf) {
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.status);
  r.transport = classify(code);
  if (code != CURLE_OK && r.transport_error.empty())
    r.transport_error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(code));
}

struct FileSink {
  CURL* h;
  Response* r;
  int fd;
  std::uint64_t offset;
  bool checked = false;  // the status of the response carrying the body was looked at
  bool writing = false;  // that response is the file's bytes (200/206), not an error page
};

bool write_all(int fd, const char* data, std::size_t bytes, std::string* error) {
  while (bytes > 0) {
    const ssize_t w = ::write(fd, data, bytes);
    if (w < 0) {
      if (errno == EINTR) continue;
      *error = std::strerror(errno);
      return false;
    }
    data += w;
    bytes -= static_cast<std::size_t>(w);
  }
  return true;
}

std::size_t on_file_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<FileSink*>(user);
  const std::size_t bytes = size * n;
  if (!s->checked) {
    s->checked = true;
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    s->writing = status == 200 || status == 206;
    // A server that answers a Range request with the whole file (200) sends it from byte 0.
    if (status == 200 && s->offset > 0) {
      if (::ftruncate(s->fd, 0) != 0 || ::lseek(s->fd, 0, SEEK_SET) != 0) {
        s->r->transport_error =
            std::string("could not rewind the partial file: ") + std::strerror(errno);
        return 0;
      }
      s->r->restarted_from_zero = true;
    }
  }
  if (!s->writing) {  // an error page: kept for the message
    if (s->r->body.size() < (64u << 10)) s->r->body.append(data, bytes);
    return bytes;
  }
  if (!write_all(s->fd, data, bytes, &s->r->transport_error)) return 0;
  s->r->body_bytes += bytes;
  return bytes;
}

struct ProgressSink {
  Response* r;
  const std::function<bool(std::uint64_t)>* on_bytes;
};

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* p = static_cast<ProgressSink*>(user);
  return (*p->on_bytes)(p->r->body_bytes) ? 0 : 1;
}

}  // namespace

std::string Response::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

Response request(const HubConfig& config, const std::string& url, bool head, bool send_token,
                 std::size_t max_body_bytes) {
  Easy e;
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {0};
  common_options(e, config, url, send_token, r);
  MemorySink sink{&r, max_body_bytes};
  curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 0L);
  if (head) curl_easy_setopt(e.h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_memory_body);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
  const CURLcode code = curl_easy_perform(e.h);
  finish(e, code, r, errbuf);
  if (code == CURLE_WRITE_ERROR)
    r.transport_error = "the answer from " + url + " is larger than " +
                        std::to_string(max_body_bytes >> 20) + " MiB";
  return r;
}

Response download_to(const HubConfig& config, const std::string& url, bool send_token, int fd,
                     std::uint64_t offset, const std::function<bool(std::uint64_t)>& on_bytes) {
  Easy e;
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {0};
  common_options(e, config, url, send_token, r);
  curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e.h, CURLOPT_MAXREDIRS, 10L);
  // CURLOPT_RANGE rather than RESUME_FROM: a server that ignores the range (200, whole file)
  // is handled by the body writer instead of failing the transfer.
  const std::string range = std::to_string(offset) + "-";
  if (offset > 0) curl_easy_setopt(e.h, CURLOPT_RANGE, range.c_str());
  FileSink sink{e.h, &r, fd, offset};
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_file_body);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &sink);
  ProgressSink progress{&r, &on_bytes};
  curl_easy_setopt(e.h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e.h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e.h, CURLOPT_XFERINFODATA, &progress);
  const CURLcode code = curl_easy_perform(e.h);
  finish(e, code, r, errbuf);
  if (code == CURLE_WRITE_ERROR) r.transport = Transport::kFatal;
  return r;
}

std::string origin_of(const std::string& url) {
  CURLU* u = curl_url();
  if (!u) return "";
  std::string origin;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* scheme = nullptr;
    char* host = nullptr;
    char* port = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (scheme && host)
      origin = lower(std::string(scheme) + "://" + host + ":" + (port ? port : ""));
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return origin;
}

std::string escape(const std::string& s) {
  global_init();
  char* out = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  if (!out) throw Error("could not encode \"" + s + "\" for a URL");
  std::string r(out);
  curl_free(out);
  return r;
}

}  // namespace framesmith::hub::http
