// bench long-video: host memory and per-section time of whole `generate` jobs of several lengths,
// side by side. Each length runs as its own child process (the program's `generate` command, as
// a user runs it, MP4 writing included), so each peak RSS is that job's alone: the kernel's
// ru_maxrss of the child. Per-section times come from the job's events: the time between one
// section_done and the next covers the next section's sampling, its decode and the writing of
// what the section before handed out.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/bench_commands.h"
#include "bench/bench_util.h"
#include "framesmith/error.h"
#include "framesmith/events.h"

namespace framesmith::bench {
namespace {

namespace fs = std::filesystem;

struct JobRun {
  double seconds_video = 0;
  double wall_s = 0;
  std::int64_t peak_rss_bytes = 0;
  std::vector<double> section_s;  // generation order
};

std::vector<double> parse_lengths(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(std::stod(item));
  if (out.empty()) throw Error("bench: --seconds wants a list such as 5,20,60");
  return out;
}

// Runs `argv` and waits; the child's own peak RSS from wait4. Its output goes to `log`.
std::int64_t run_child(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("bench: fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    std::FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) ::dup2(::fileno(stdout), 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) < 0)
    throw Error(std::string("bench: wait4 failed: ") + std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("bench: " + argv[0] + " " + argv[1] + " failed (status " + std::to_string(status) +
                "); its output is in " + log);
  return std::int64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// Section times from the events file: from the first sampling progress to the first
// section_done, then between consecutive section_done events.
std::vector<double> section_times(const std::string& events_path) {
  std::ifstream in(events_path);
  std::string line;
  double start = -1, previous = -1;
  std::vector<double> out;
  while (std::getline(in, line)) {
    const Event e = event_from_json_line(line);
    if (start < 0 && e.type == EventType::kProgress && e.phase == "sampling") start = e.t_s;
    if (e.type != EventType::kSectionDone) continue;
    out.push_back(e.t_s - (previous < 0 ? start : previous));
    previous = e.t_s;
  }
  return out;
}

JobRun run_length(const Options& o, const std::string& program, const fs::path& work,
                  double seconds) {
  const std::string name = "len" + std::to_string(int(seconds * 1000));
  const std::string events = (work / (name + ".jsonl")).string();
  std::vector<std::string> argv = {program,
                                   "generate",
                                   "--model",
                                   o.str("model"),
                                   "--image",
                                   o.str("image"),
                                   "--prompt",
                                   "a long video for the benchmark",
                                   "--seconds",
                                   std::to_string(seconds),
                                   "--steps",
                                   o.str("steps", "1"),
                                   "--window",
                                   o.str("window", "9"),
                                   "--resolution",
                                   o.str("resolution", "320"),
                                   "--variant",
                                   o.str("variant", "original"),
                                   "--crf",
                                   o.str("crf", "16"),
                                   "--no-teacache",
                                   "--quiet",
                                   "--restart",
                                   "--out",
                                   (work / (name + ".mp4")).string(),
                                   "--events",
                                   events};
  JobRun r;
  r.seconds_video = seconds;
  const auto t0 = std::chrono::steady_clock::now();
  r.peak_rss_bytes = run_child(argv, (work / (name + ".log")).string());
  r.wall_s = seconds_since(t0);
  r.section_s = section_times(events);
  return r;
}

nlohmann::json run_json(const JobRun& r) {
  const std::size_t n = r.section_s.size();
  nlohmann::json j = {{"seconds_video", r.seconds_video},
                      {"sections", n},
                      {"peak_rss_bytes", r.peak_rss_bytes},
                      {"wall_s", r.wall_s},
                      {"section_s", r.section_s}};
  if (n >= 2) {
    j["second_section_s"] = r.section_s[1];
    j["last_section_s"] = r.section_s[n - 1];
    j["last_vs_second"] = r.section_s[n - 1] / r.section_s[1];
  }
  return j;
}

}  // namespace

int bench_long_video(const Options& o, std::ostream& out) {
  if (o.str("model").empty() || o.str("image").empty())
    throw Error("bench long-video: --model DIR and --image FILE are required");
  const std::vector<double> lengths = parse_lengths(o.str("seconds", "5,20,60"));
  // The running program by default: framesmith-cli (framesmith-engine's generate writes PPM
  // frames, not the MP4 segments measured here, and takes no --crf).
  const std::string program = o.str("program", fs::read_symlink("/proc/self/exe").string());
  const fs::path work = o.has("work") ? fs::path(o.str("work"))
                                      : fs::temp_directory_path() /
                                            ("framesmith-long-video-" + std::to_string(::getpid()));
  fs::create_directories(work);
  // Read here, so that check_all_used knows them (run_length passes them on to the child).
  for (const char* key : {"steps", "window", "resolution", "variant", "crf"}) (void)o.str(key);
  o.check_all_used();
  std::vector<JobRun> runs;
  for (double s : lengths) {
    runs.push_back(run_length(o, program, work, s));
    print_line(out,
               {{"bench", "long-video"}, {"program", program}, {"run", run_json(runs.back())}});
  }
  nlohmann::json summary = {{"bench", "long-video"},
                            {"program", program},
                            {"resolution", o.str("resolution", "320")},
                            {"steps", o.str("steps", "1")},
                            {"window", o.str("window", "9")},
                            {"variant", o.str("variant", "original")},
                            {"work", work.string()},
                            {"machine", machine_json()}};
  nlohmann::json side_by_side = nlohmann::json::array();
  for (const JobRun& r : runs) side_by_side.push_back(run_json(r));
  summary["runs"] = side_by_side;
  summary["peak_rss_longest_vs_shortest"] =
      double(runs.back().peak_rss_bytes) /
      double(std::max<std::int64_t>(1, runs.front().peak_rss_bytes));
  print_line(out, summary);
  return 0;
}

}  // namespace framesmith::bench
