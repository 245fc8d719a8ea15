// Pieces the planner and the downloader share: URLs, what a status means, how long to wait.
#pragma once
#include <functional>
#include <string>

#include "framesmith/hub.h"
#include "http_client.h"

namespace framesmith::hub::detail {

std::string api_revision_url(const HubConfig& c, const std::string& repo, const std::string& rev);
std::string resolve_url(const HubConfig& c, const std::string& repo, const std::string& commit,
                        const std::string& path);

// 408, 429 and 5xx gateway answers: worth another try.
bool is_retryable_status(long status);
// One sentence for a refused request ("REPO is gated: ..."); `what` names what was asked for.
std::string status_message(const HubConfig& c, const http::Response& r, const std::string& repo,
                           const std::string& what);
// The wait before attempt `attempt` (1 = the first retry): Retry-After when the answer has one,
// else the doubling backoff; both capped at config.backoff_max_s.
double retry_wait_s(const HubConfig& c, const http::Response& r, int attempt);
// Sleeps, waking early (returns false) when the control asks to stop.
bool sleep_unless_stopped(double seconds, const Control* control);
bool stop_requested(const Control* control);

// A small request (HEAD, or GET kept in memory), tried again with backoff on dropped
// connections, 408/429/5xx and (three tries) an unreachable host. `on_wait(seconds, why)` runs
// before each wait. Returns the last answer; its transport is kStopped when the control stopped
// it during a wait.
using WaitFn = std::function<void(double, const std::string&)>;
http::Response request_retrying(const HubConfig& c, const std::string& url, bool head,
                                bool send_token, const Control* control, const WaitFn& on_wait);
// "connection dropped (curl's words)" / "HTTP 503" for a retry message.
std::string retry_reason(const http::Response& r);

}  // namespace framesmith::hub::detail
