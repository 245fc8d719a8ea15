// The few HTTP exchanges the hub client needs, over libcurl: small requests whose body is kept
// in memory, and ranged downloads appended to a file. No policy here (retries, messages and
// verification live in the callers); only what a transfer did.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "framesmith/hub.h"

namespace framesmith::hub::http {

enum class Transport {
  kOk = 0,
  kRetryable,    // dropped or stalled connection, timeout
  kUnreachable,  // no such host, connection refused: retried a few times only
  kFatal,        // TLS, malformed URL, a local write error, ...
  kStopped,      // the stop callback asked to end the transfer
};

struct Response {
  long status = 0;                             // of the last response (0: none arrived)
  std::map<std::string, std::string> headers;  // the last response's, names in lower case
  std::string body;                            // small requests, or an error body (<= 64 KiB)
  Transport transport = Transport::kOk;
  std::string transport_error;       // curl's words, or the local write error
  std::uint64_t body_bytes = 0;      // written to the file (ranged downloads)
  bool restarted_from_zero = false;  // a server ignored Range: the file was rewritten from 0
  std::string header(const std::string& lower_name) const;
};

// HEAD or GET without following redirects (a 3xx comes back as it is), body kept in memory up to
// `max_body_bytes`. `send_token`: the config's token goes with this request.
Response request(const HubConfig& config, const std::string& url, bool head, bool send_token,
                 std::size_t max_body_bytes = std::size_t(64) << 20);

// GET `url`, following redirects, appending to the open file `fd` from byte `offset` on (a
// Range request when offset > 0). The token goes only to the first host (libcurl drops it on a
// redirect to another host). `on_bytes(total written by this call)` runs as data arrives and
// about once a second; returning false stops the transfer (Transport::kStopped).
Response download_to(const HubConfig& config, const std::string& url, bool send_token, int fd,
                     std::uint64_t offset, const std::function<bool(std::uint64_t)>& on_bytes);

// "https://host:port" of a URL (scheme, host and port as libcurl parses them), "" when invalid.
std::string origin_of(const std::string& url);
// Percent-encodes one path segment (or a revision: "refs/pr/1" -> "refs%2Fpr%2F1").
std::string escape(const std::string& s);

}  // namespace framesmith::hub::http
