#include "framesmith/console_job.h"

#include <atomic>
#include <csignal>
#include <fstream>
#include <memory>
#include <mutex>

#include "framesmith/error.h"
#include "framesmith/events.h"
#include "framesmith/units.h"

namespace framesmith {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};

void on_signal(int sig) {
  g_signal.store(sig);
  g_cancel.store(true);
}

// Said before sampling starts: a phase with no CPU rung that the plan cannot fit even at its
// smallest setting. The job still runs (estimates can be high) and saves every section as it is
// sampled, so nothing is lost if it does run out.
void warn_about_plan(const Event& e, const std::string& program, std::ostream& err) {
  if (e.type != EventType::kPlan || e.text("fits") != "no") return;
  if (e.phase != "sampling" && e.phase != "decode") return;
  err << "[memory] warning: the plan puts " << e.phase << " at about "
      << format_size(e.number("estimate")) << " even at its smallest setting, over the "
      << format_size(e.number("budget")) << " budget; each section is saved as soon as it is "
      << "sampled, so if this runs out, '" << program << " resume' with a larger --vram-budget "
      << "continues the job\n";
}

}  // namespace

int ConsoleResult::exit_status() const {
  if (result.status == StatusCode::kOk) return 0;
  if (result.status == StatusCode::kCancelled) return signal ? 128 + signal : 130;
  return 1;
}

ConsoleResult run_console_job(const GenerationRequest& request, GenerationCallbacks cb,
                              const ConsoleJob& how, std::ostream& err) {
  std::unique_ptr<std::ofstream> events;
  if (!how.events_path.empty()) {
    events = std::make_unique<std::ofstream>(how.events_path, std::ios::trunc);
    if (!*events) throw Error(how.events_path + ": cannot write events file");
  }
  std::mutex events_mutex;  // events come from the job thread and the memory telemetry thread
  const auto own_on_event = cb.on_event;
  cb.on_event = [&](const Event& e) {
    const std::lock_guard<std::mutex> lock(events_mutex);
    if (events) *events << to_json_line(e) << "\n" << std::flush;
    warn_about_plan(e, how.program, err);
    if (e.type == EventType::kNotice) err << "[note] " << e.text("message") << "\n";
    if (e.type == EventType::kLora)
      err << "[lora] " << e.text("file") << ": " << e.text("layout") << " layout, "
          << e.number("modules") << " modules, strength " << e.number("strength") << ", "
          << e.text("applied") << "\n";
    if (e.type == EventType::kOomRecovered)
      err << "[memory] " << e.phase << ": out of memory, " << e.text("action") << " -> "
          << e.text("outcome") << "\n";
    if (own_on_event) own_on_event(e);
  };
  cb.on_progress = [&](const Progress& p) {
    if (how.quiet) return;
    err << "\r[" << p.phase << "]";
    if (p.sections) err << " section " << p.section << "/" << p.sections;
    if (p.steps) err << " step " << p.step << "/" << p.steps;
    err << "  " << static_cast<int>(p.elapsed_s) << " s     " << std::flush;
  };
  cb.cancel = &g_cancel;
  g_cancel.store(false);
  g_signal.store(0);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  ConsoleResult r;
  r.result = generate(request, cb);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  r.signal = g_signal.load();
  if (!how.quiet) err << "\n";
  return r;
}

}  // namespace framesmith
