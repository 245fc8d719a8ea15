// Configuration, the model sets, URLs and the meaning of the hub's answers.
#include <curl/curl.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <thread>

#include "hub_internal.h"
#include "layout.h"

namespace framesmith::hub {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string hf_home() {
  if (const std::string h = env("HF_HOME"); !h.empty()) return h;
  if (const std::string x = env("XDG_CACHE_HOME"); !x.empty()) return x + "/huggingface";
  if (const std::string home = env("HOME"); !home.empty()) return home + "/.cache/huggingface";
  return ".cache/huggingface";
}

std::string strip_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (in) std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

}  // namespace

HubConfig hub_config_from_environment() {
  HubConfig c;
  if (const std::string e = env("HF_ENDPOINT"); !e.empty()) c.endpoint = strip_trailing_slashes(e);
  c.token = env("HF_TOKEN");
  if (c.token.empty()) {
    const std::string path = env("HF_TOKEN_PATH");
    c.token = read_token_file(path.empty() ? hf_home() + "/token" : path);
  }
  c.user_agent = "framesmith/0.1 (hub client; libcurl)";
  return c;
}

std::vector<std::string> known_model_sets() {
  return {"framepack", "framepack-f1"};
}

std::vector<RepoSelection> model_set_selection(const std::string& name) {
  // What FramePack's demo loads: the packed transformer's whole repository, five folders of
  // HunyuanVideo (not its 25 GB transformer/) and SigLIP from flux_redux_bfl.
  RepoSelection transformer{"", "main", {}, "transformer"};
  if (name == "framepack")
    transformer.repo = "lllyasviel/FramePackI2V_HY";
  else if (name == "framepack-f1")
    transformer.repo = "lllyasviel/FramePack_F1_I2V_HY_20250503";
  else
    throw Error("unknown model set \"" + name + "\" (known: framepack, framepack-f1)");
  return {transformer,
          {"hunyuanvideo-community/HunyuanVideo",
           "main",
           {"vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"},
           ""},
          {"lllyasviel/flux_redux_bfl", "main", {"image_encoder", "feature_extractor"}, ""}};
}

std::string default_hub_cache() {
  if (const std::string c = env("HF_HUB_CACHE"); !c.empty()) return c;
  return hf_home() + "/hub";
}

Target parse_target(const std::string& to) {
  if (to.empty() || to == "hf") return {Layout::kHubCache, default_hub_cache()};
  if (to.rfind("hf:", 0) == 0 && to.size() > 3) return {Layout::kHubCache, to.substr(3)};
  return {Layout::kPlainFolder, strip_trailing_slashes(to)};
}

std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

namespace detail {

std::string api_revision_url(const HubConfig& c, const std::string& repo, const std::string& rev) {
  return c.endpoint + "/api/models/" + repo + "/revision/" + http::escape(rev) + "?blobs=true";
}

std::string resolve_url(const HubConfig& c, const std::string& repo, const std::string& commit,
                        const std::string& path) {
  std::string escaped;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    if (!escaped.empty()) escaped += '/';
    escaped += http::escape(path.substr(start, end - start));
    start = end + 1;
  }
  return c.endpoint + "/" + repo + "/resolve/" + commit + "/" + escaped;
}

bool is_retryable_status(long s) {
  return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

std::string status_message(const HubConfig& c, const http::Response& r, const std::string& repo,
                           const std::string& what) {
  const std::string code = r.header("x-error-code");
  const std::string server = r.header("x-error-message");
  const std::string said = server.empty() ? "" : " (the hub says: " + server + ")";
  const std::string page = c.endpoint + "/" + repo;
  const std::string status = " [HTTP " + std::to_string(r.status) + "]";
  if (code == "GatedRepo" || (r.status == 403 && code.empty()))
    return repo + " is gated: open " + page +
           ", accept its conditions with your Hugging Face account, then set HF_TOKEN to an "
           "access token of that account (" +
           c.endpoint + "/settings/tokens)" + status + said;
  if (r.status == 401 || r.status == 403) {
    if (code == "RepoNotFound")
      return repo +
             ": no such repository, or a private one: check the name; for a private "
             "repository set HF_TOKEN to a token that may read it" +
             status + said;
    if (c.token.empty())
      return what + " needs a Hugging Face login: create an access token at " + c.endpoint +
             "/settings/tokens and set HF_TOKEN to it" + status + said;
    return "the hub refused the access token (HF_TOKEN or the saved token) for " + what +
           ": it may be mistyped, expired or lack read access" + status + said;
  }
  if (r.status == 404) {
    if (code == "RevisionNotFound") return repo + " has no such revision: " + what + status + said;
    if (code == "RepoNotFound") return repo + ": no such repository" + status + said;
    return "not found on the hub: " + what + status + said;
  }
  if (r.status == 416) return what + ": the hub refused the byte range asked for" + status + said;
  return what + ": unexpected answer from the hub" + status + said;
}

double retry_wait_s(const HubConfig& c, const http::Response& r, int attempt) {
  double wait = c.backoff_first_s * std::pow(2.0, std::max(0, attempt - 1));
  const std::string after = r.header("retry-after");
  if (!after.empty()) {
    char* end = nullptr;
    const double secs = std::strtod(after.c_str(), &end);
    if (end && *end == '\0' && secs >= 0) {
      wait = secs;
    } else if (const time_t when = curl_getdate(after.c_str(), nullptr); when > 0) {
      wait = std::max(0.0, std::difftime(when, std::time(nullptr)));
    }
  }
  return std::min(wait, c.backoff_max_s);
}

bool stop_requested(const Control* control) {
  return control && (control->pause.load() || control->cancel.load());
}

bool sleep_unless_stopped(double seconds, const Control* control) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<long long>(seconds * 1e6));
  while (std::chrono::steady_clock::now() < until) {
    if (stop_requested(control)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !stop_requested(control);
}

std::string retry_reason(const http::Response& r) {
  if (r.transport != http::Transport::kOk) return r.transport_error;
  return "HTTP " + std::to_string(r.status);
}

http::Response request_retrying(const HubConfig& c, const std::string& url, bool head,
                                bool send_token, const Control* control, const WaitFn& on_wait) {
  for (int attempt = 1;; ++attempt) {
    http::Response r = http::request(c, url, head, send_token);
    const bool unreachable = r.transport == http::Transport::kUnreachable;
    const bool again = unreachable || r.transport == http::Transport::kRetryable ||
                       (r.transport == http::Transport::kOk && is_retryable_status(r.status));
    if (!again || attempt >= (unreachable ? std::min(3, c.max_attempts) : c.max_attempts)) return r;
    const double wait = retry_wait_s(c, r, attempt);
    if (on_wait) on_wait(wait, retry_reason(r));
    if (!sleep_unless_stopped(wait, control)) {
      r.transport = http::Transport::kStopped;
      return r;
    }
  }
}

}  // namespace detail
}  // namespace framesmith::hub
