// Downloads from the Hugging Face hub, as huggingface_hub does it: the revision's file list from
// the API, each file from its `resolve` URL (redirects to the CDN followed), into the hub cache
// layout shared with Python tools or into a plain folder. Plain C++ over libcurl; no Qt, no
// LibTorch. Errors are hub::Error (one readable sentence); a cancelled run ends with Cancelled.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace framesmith::hub {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// How the client talks to the hub. hub_config_from_environment() reads HF_ENDPOINT, HF_TOKEN
// (else $HF_HOME/token), HF_HUB_CACHE / HF_HOME; proxies come from the environment through
// libcurl (http_proxy, https_proxy, no_proxy).
struct HubConfig {
  std::string endpoint = "https://huggingface.co";
  std::string token;  // sent only to the endpoint's host, never to the CDN a redirect names
  std::string user_agent;
  int max_attempts = 8;          // per request, for dropped connections, 429, 5xx
  double backoff_first_s = 1.0;  // doubled per attempt ...
  double backoff_max_s = 60.0;   // ... up to this; a Retry-After header wins (capped here too)
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;  // below 1 KiB/s for this long counts as a dropped connection
  bool verify_tls = true;
};
HubConfig hub_config_from_environment();

// What to take from one repository: every file of the revision under `folders` (all of them
// when empty). `plain_dir` maps a repository path onto the plain layout: files of the repo root
// go under `plain_root` ("transformer" for FramePack's repository, "" for the others, whose files
// already sit in diffusers sub-folders).
struct RepoSelection {
  std::string repo;  // "owner/name"
  std::string revision = "main";
  std::vector<std::string> folders;
  std::string plain_root;
};

// The sets Framesmith runs: "framepack" (original) and "framepack-f1".
std::vector<std::string> known_model_sets();
// Throws Error naming the known sets for any other name.
std::vector<RepoSelection> model_set_selection(const std::string& name);

enum class Layout { kHubCache = 1, kPlainFolder };
struct Target {
  Layout layout = Layout::kHubCache;
  std::string dir;  // the hub cache folder (…/huggingface/hub) or the plain folder
};
// "--to hf" / "--to hf:DIR" / "--to DIR"; `to` empty: the hub cache (the default).
Target parse_target(const std::string& to);
std::string default_hub_cache();

struct RemoteFile {
  std::string repo;
  std::string revision;
  std::string commit;  // the revision's commit hash, from the API
  std::string path;    // inside the repository
  std::uint64_t size_bytes = 0;
  std::string blob_id;              // git blob id (SHA-1) of the file or of its LFS pointer
  std::string lfs_sha256;           // LFS files: SHA-256 of the content; "" otherwise
  std::string etag;                 // the name the hub gives the content: lfs_sha256, else blob_id
  std::string local_path;           // where it lands (snapshot entry or plain file)
  std::uint64_t present_bytes = 0;  // size_bytes when installed already, else a partial's size
  bool installed = false;
};

struct DownloadPlan {
  Target target;
  std::vector<RemoteFile> files;  // in install order: each folder's key file last
  std::uint64_t total_bytes = 0;
  std::uint64_t missing_bytes = 0;  // what is still to fetch (partials counted as fetched)
  std::uint64_t free_bytes = 0;     // on the target's file system, when planned
};

// Lists every selected file (one API call per repository) and what is already on disk.
// Throws Error for 401/403 (with what to do), 404, an unreachable endpoint, a bad answer.
DownloadPlan plan_download(const HubConfig& config, const std::vector<RepoSelection>& selection,
                           const Target& target);
// "" when the plan fits on the target's file system; else a sentence saying how much is missing.
std::string disk_space_problem(const DownloadPlan& plan);

enum class Phase { kDownloading = 1, kVerifying, kRetrying, kInstalled, kSkipped };
struct Progress {
  Phase phase = Phase::kDownloading;
  std::size_t file_index = 0;  // into plan.files
  std::string file;            // "owner/name: path"
  std::uint64_t file_done_bytes = 0;
  std::uint64_t file_total_bytes = 0;
  std::uint64_t done_bytes = 0;  // over the whole plan
  std::uint64_t total_bytes = 0;
  double bytes_per_s = 0;  // over the last few seconds
  double eta_s = -1;       // -1 while unknown
  double retry_in_s = 0;   // kRetrying: the wait before the next attempt
  std::string message;     // kRetrying: why; kInstalled: from where it came
};
using ProgressFn = std::function<void(const Progress&)>;

// Stop flags the caller may set from another thread. Pause keeps the partial files (the next
// run resumes them with HTTP Range); cancel removes the partial file of the file in flight.
struct Control {
  std::atomic<bool> pause{false};
  std::atomic<bool> cancel{false};
};

enum class Outcome { kDone = 1, kPaused, kCancelled };
struct DownloadResult {
  Outcome outcome = Outcome::kDone;
  std::uint64_t fetched_bytes = 0;  // bytes that came over the network in this run
  std::size_t files_fetched = 0;
  std::size_t files_present = 0;
  std::size_t refetched_after_bad_checksum = 0;
};

// Fetches what the plan misses, verifies each file (LFS: SHA-256 against the hub's oid; others:
// size and git blob id) before it becomes visible, installs it (hub cache: blobs/, snapshots/
// symlinks, refs/ last; plain: renamed into place, each folder's key file last). Throws Error for
// failures that retrying cannot mend; what was installed stays installed, partials stay partial.
DownloadResult run_download(const HubConfig& config, DownloadPlan& plan, const ProgressFn& progress,
                            Control* control);

std::string format_bytes(std::uint64_t bytes);

}  // namespace framesmith::hub
