// A whole tiny generation through the window (offscreen): the request goes to the worker thread,
// progress, previews, the growing video, memory events and the result come back as queued signals,
// the GUI stays responsive all along (event-loop latency probed with a timer), and an OOM recovery
// shows as a marker on the memory graph and a row in the event log.
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QToolButton>

#include "event_log.h"
#include "jobs_panel.h"
#include "memory_graph.h"
#include "preview_player.h"
#include "ui_test_support.h"

using namespace framesmith;
using namespace framesmith::ui;

namespace {

// Measures how late a 5 ms timer fires: the longest time the event loop was busy elsewhere.
class LatencyProbe : public QObject {
 public:
  LatencyProbe() {
    timer_.setTimerType(Qt::PreciseTimer);
    timer_.setInterval(kIntervalMs);
    connect(&timer_, &QTimer::timeout, this, [this] {
      const qint64 now = clock_.nsecsElapsed();
      if (last_ns_ >= 0) worst_ms_ = std::max(worst_ms_, (now - last_ns_) / 1e6 - kIntervalMs);
      last_ns_ = now;
      ++ticks_;
    });
  }
  void start() {
    clock_.start();
    timer_.start();
  }
  void stop() { timer_.stop(); }
  double worst_ms() const { return worst_ms_; }
  int ticks() const { return ticks_; }

 private:
  static constexpr int kIntervalMs = 5;
  QTimer timer_;
  QElapsedTimer clock_;
  qint64 last_ns_ = -1;
  double worst_ms_ = 0;
  int ticks_ = 0;
};

}  // namespace

class GenerationGuiTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void whole_tiny_job_through_the_window() {
    QTemporaryDir dir;
    StartOptions o = test::small_job_options(dir);
    // A simulated 8 MiB device: the engine samples its memory, plans each phase for the budget
    // and (with today's planner) recovers from an OOM or two in "vae encode".
    o.vram_budget = "8MiB";
    MainWindow w(o);
    w.resize(1366, 740);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    QSignalSpy frames(w.worker(), &app::GenerationWorker::video_updated);
    QSignalSpy events(w.worker(), &app::GenerationWorker::event);
    LatencyProbe probe;
    probe.start();
    QVERIFY(w.start_generation());
    QVERIFY(w.is_running());
    QVERIFY(w.windowTitle() == "Framesmith" || w.windowTitle().contains("Framesmith"));

    // A deterministic OOM recovery on top of whatever the budget causes: the request has no
    // fault-injection field, so it goes through the worker's own signal, the path every engine
    // event takes to the window.
    Event oom;
    oom.type = EventType::kOomRecovered;
    oom.t_s = 0.5;
    oom.phase = "decode chunk 1";
    oom.numbers = {{"requested", 48.0 * 1024 * 1024}, {"free", 8.0 * 1024 * 1024}, {"rung", 1}};
    oom.texts = {{"action", "chunk 16→4"}, {"outcome", "ok"}};
    Q_EMIT w.worker()->event(oom);  // queued to the window like the engine's own events

    QTRY_VERIFY_WITH_TIMEOUT(w.windowTitle().contains("step"), 30000);  // progress in the title
    QVERIFY(finished.wait(50000));
    probe.stop();
    QCOMPARE(finished.count(), 1);
    QVERIFY2(finished.first().first().toInt() == int(StatusCode::kOk),
             qPrintable(w.last_message()));

    // The video: on disk with its sidecar, played at once section by section, in the history.
    QVERIFY(QFile::exists(w.last_video_path()));
    QVERIFY(QFile::exists(w.last_video_path().chopped(4) + ".json"));
    QCOMPARE(frames.count(), 2);  // two sections, each decoded and shown at once
    QVERIFY(w.player()->frame_count() > 1);
    QCOMPARE(w.player()->video_path(), w.last_video_path());
    QCOMPARE(w.jobs_panel()->history_count(), 1);
    QVERIFY(w.windowTitle().startsWith("Done"));
    QVERIFY2(w.status_text().startsWith("Done in"), qPrintable(w.status_text()));

    // Memory samples from the engine's telemetry, and one marker for every OOM recovery and
    // allocator event it reported (and for the injected one), each with a row in the log.
    int samples = 0, markers = 0, ooms = 0;
    for (const QList<QVariant>& args : events) {
      const Event e = args.first().value<Event>();
      samples += e.type == EventType::kMemory;
      ooms += e.type == EventType::kOomRecovered;
      markers += e.type == EventType::kOomRecovered || e.type == EventType::kAllocator;
    }
    qInfo("engine events: %d memory samples, %d OOM recoveries (1 injected)", samples, ooms);
    QVERIFY(samples > 0);
    QCOMPARE(w.memory_graph()->sample_count(), samples);
    QCOMPARE(w.memory_graph()->marker_count(), markers);
    bool found = false;
    for (int i = 0; i < w.memory_graph()->marker_count(); ++i)
      found |= w.memory_graph()->marker_tooltip(i).contains("chunk 16→4");
    QVERIFY(found);
    w.event_log()->set_filter(EventLog::Filter::kOom);
    QCOMPARE(w.event_log()->visible_row_count(), ooms);
    w.event_log()->set_filter(EventLog::Filter::kResults);
    QVERIFY(w.event_log()->visible_text(false).contains("finished"));

    // The log file has the job.
    QFile log(w.log_path());
    QVERIFY(log.open(QIODevice::ReadOnly));
    const QString text = QString::fromUtf8(log.readAll());
    QVERIFY(text.contains("job 1 start"));
    QVERIFY(text.contains("job 1 ok"));

    // The GUI never waited on the engine.
    QVERIFY(probe.ticks() > 50);
    QVERIFY2(probe.worst_ms() <= 50.0,
             qPrintable(QString("longest event-loop stall %1 ms").arg(probe.worst_ms())));
    qInfo("longest event-loop stall while generating: %.1f ms over %d ticks", probe.worst_ms(),
          probe.ticks());
  }

  void a_failed_job_says_why_and_keeps_the_log_at_hand() {
    QTemporaryDir dir;
    StartOptions o = test::small_job_options(dir);
    QFile blocker(dir.filePath("not-a-folder"));
    QVERIFY(blocker.open(QIODevice::WriteOnly));
    blocker.close();
    o.output_dir = dir.filePath("not-a-folder/videos");  // cannot be created
    MainWindow w(o);
    w.show();
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    QVERIFY(w.start_generation());
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toInt(), int(StatusCode::kBadInput));
    QVERIFY2(w.status_text().contains("not-a-folder") && w.status_text().contains("bad input"),
             qPrintable(w.status_text()));
    auto* open_log = w.findChild<QToolButton*>("open_log");
    QVERIFY(open_log && open_log->isVisibleTo(&w));
    QFile log(w.log_path());
    QVERIFY(log.open(QIODevice::ReadOnly));
    QVERIFY(QString::fromUtf8(log.readAll()).contains("job 1 bad input"));
    QVERIFY(!w.is_running());
  }
};

QTEST_MAIN(GenerationGuiTest)
#include "generation_gui_test.moc"
