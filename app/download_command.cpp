#include "download_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <sstream>

#include "first_run.h"
#include "framesmith/error.h"
#include "framesmith/generation_options.h"

namespace framesmith::app {
namespace {

std::atomic<hub::Control*> g_control{nullptr};

void on_stop_signal(int) {
  if (hub::Control* c = g_control.load()) c->pause = true;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string clock_text(double seconds) {
  if (seconds < 0) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string percent(std::uint64_t done, std::uint64_t total) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%3.0f%%", total ? 100.0 * double(done) / double(total) : 100.0);
  return buf;
}

// A terminal gets one line redrawn in place; a log gets a line per event and one every 5 s.
class ConsoleProgress {
 public:
  ConsoleProgress(std::ostream& err, bool terminal, const hub::DownloadPlan& plan)
      : err_(err), terminal_(terminal), count_(plan.files.size()) {}

  void operator()(const hub::Progress& p) {
    const std::string status = percent(p.done_bytes, p.total_bytes) + " " +
                               hub::format_bytes(p.done_bytes) + " of " +
                               hub::format_bytes(p.total_bytes) + ", " +
                               hub::format_bytes(static_cast<std::uint64_t>(p.bytes_per_s)) +
                               "/s, ETA " + clock_text(p.eta_s);
    const std::string which =
        "[" + std::to_string(p.file_index + 1) + "/" + std::to_string(count_) + "] " + p.file;
    switch (p.phase) {
      case hub::Phase::kRetrying:
        line("[download] " + which + ": " + p.message + "; trying again in " +
             clock_text(p.retry_in_s));
        return;
      case hub::Phase::kInstalled:
        line("[download] " + which + ": " + p.message);
        return;
      case hub::Phase::kSkipped:
        line("[download] " + which + ": " + p.message + " (" +
             hub::format_bytes(p.file_total_bytes) + ")");
        return;
      case hub::Phase::kVerifying:
      case hub::Phase::kDownloading:
        break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (terminal_) {
      const int width = 24;
      const int filled =
          p.total_bytes ? int(width * double(p.done_bytes) / double(p.total_bytes)) : width;
      std::string bar = "[" + std::string(std::size_t(filled), '#') +
                        std::string(std::size_t(width - filled), ' ') + "] ";
      std::string text =
          bar + status + "  " + (p.phase == hub::Phase::kVerifying ? "verifying " : "") + which;
      if (text.size() > 140) text = text.substr(0, 137) + "...";
      err_ << "\r" << text << "\033[K" << std::flush;
      open_line_ = true;
    } else if (now - last_line_ > std::chrono::seconds(5)) {
      last_line_ = now;
      line("[download] " + status + " " + (p.phase == hub::Phase::kVerifying ? "verifying " : "") +
           which);
    }
  }

  // Ends a bar left open on the terminal.
  void end() {
    if (open_line_) err_ << "\r\033[K" << std::flush;
    open_line_ = false;
  }

  void line(const std::string& text) {
    if (open_line_) err_ << "\r\033[K";
    open_line_ = false;
    err_ << text << "\n" << std::flush;
  }

 private:
  std::ostream& err_;
  bool terminal_;
  std::size_t count_;
  bool open_line_ = false;
  std::chrono::steady_clock::time_point last_line_{};
};

const char* kDownloadUsage =
    "usage: framesmith-cli download framepack|framepack-f1 [--to DIR|hf|hf:DIR] [--dry-run]";

}  // namespace

hub::Target default_download_target(const std::string& set_name) {
  const std::string cache = hub::default_hub_cache();
  if (is_dir(cache)) return {hub::Layout::kHubCache, cache};
  return {hub::Layout::kPlainFolder, user_folders().models + "/" + set_name};
}

std::string describe_plan(const hub::DownloadPlan& plan) {
  struct RepoSum {
    std::string commit;
    std::size_t files = 0, present = 0;
    std::uint64_t bytes = 0, missing = 0;
  };
  std::vector<std::string> order;
  std::map<std::string, RepoSum> sums;
  for (const hub::RemoteFile& f : plan.files) {
    const std::string key = f.repo + "@" + f.revision;
    if (!sums.count(key)) order.push_back(key);
    RepoSum& s = sums[key];
    s.commit = f.commit;
    ++s.files;
    s.present += f.installed ? 1 : 0;
    s.bytes += f.size_bytes;
    s.missing += f.size_bytes - f.present_bytes;
  }
  std::ostringstream o;
  for (const std::string& key : order) {
    const RepoSum& s = sums[key];
    o << "  " << key << " (commit " << s.commit.substr(0, 12) << "): " << s.files << " files, "
      << hub::format_bytes(s.bytes);
    if (s.present) o << ", " << s.present << " already there";
    if (s.missing && s.missing != s.bytes) o << ", " << hub::format_bytes(s.missing) << " to fetch";
    o << "\n";
  }
  o << "  total " << hub::format_bytes(plan.total_bytes) << ", to fetch "
    << hub::format_bytes(plan.missing_bytes) << "; free at the target "
    << hub::format_bytes(plan.free_bytes) << "\n";
  o << "  into " << plan.target.dir
    << (plan.target.layout == hub::Layout::kHubCache ? " (Hugging Face cache layout)\n"
                                                     : " (plain folder)\n");
  return o.str();
}

int cmd_download(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CommandOptions o = parse_command(
      {"framesmith-cli download",
       "Fetches the files FramePack uses (framepack or framepack-f1) from the Hugging Face hub; "
       "HF_ENDPOINT, HF_TOKEN and the proxy variables are honoured. A stopped download resumes.",
       {"SET"},
       "",
       {{"--to", "hf (the hub cache, default when it exists), hf:DIR, or a folder (plain layout)",
         false},
        {"--dry-run", "show the plan (files, sizes, free disk) and fetch nothing", true}}},
      args, 1);
  if (answered_help(o, out)) return 0;
  const std::string name = o.positionals.at(0);
  std::vector<hub::RepoSelection> selection;
  try {
    selection = hub::model_set_selection(name);
  } catch (const hub::Error& e) {
    throw Error(std::string(e.what()) + "\n" + kDownloadUsage);
  }
  const hub::Target target =
      o.has("--to") ? hub::parse_target(o.get("--to")) : default_download_target(name);
  const hub::HubConfig config = hub::hub_config_from_environment();
  try {
    out << "[download] " << name << " from " << config.endpoint
        << (config.token.empty() ? "" : " (with an access token)") << "\n";
    hub::DownloadPlan plan = hub::plan_download(config, selection, target);
    out << describe_plan(plan);
    if (const std::string p = hub::disk_space_problem(plan); !p.empty()) throw hub::Error(p);
    const std::string model_arg =
        target.layout == hub::Layout::kHubCache
            ? (target.dir == hub::default_hub_cache() ? "hf" : "hf:" + target.dir)
            : target.dir;
    const std::string use =
        "use it with --model " + model_arg + (name == "framepack-f1" ? " --variant f1" : "");
    if (o.flag("--dry-run")) {
      out << "[download] dry run: nothing fetched\n";
      return 0;
    }
    hub::Control control;
    g_control.store(&control);
    auto old_int = std::signal(SIGINT, on_stop_signal);
    auto old_term = std::signal(SIGTERM, on_stop_signal);
    ConsoleProgress progress(err, ::isatty(STDERR_FILENO) != 0, plan);
    hub::DownloadResult r;
    try {
      r = hub::run_download(config, plan, std::ref(progress), &control);
    } catch (...) {
      std::signal(SIGINT, old_int);
      std::signal(SIGTERM, old_term);
      g_control.store(nullptr);
      throw;
    }
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
    g_control.store(nullptr);
    progress.end();
    if (r.outcome != hub::Outcome::kDone) {
      std::size_t in = 0;
      for (const auto& f : plan.files) in += f.installed ? 1 : 0;
      err << "[download] stopped: " << in << " of " << plan.files.size()
          << " files are in; the file in flight is kept as a partial file. Run the same command "
             "again to resume.\n";
      return 130;
    }
    out << "[download] done: fetched " << hub::format_bytes(r.fetched_bytes) << " in "
        << r.files_fetched << " files (" << r.files_present << " already there";
    if (r.refetched_after_bad_checksum)
      out << ", " << r.refetched_after_bad_checksum << " fetched again after a failed check";
    out << "); " << use << "\n";
    return 0;
  } catch (const hub::Error& e) {
    throw Error(e.what());
  }
}

}  // namespace framesmith::app
