// Stop and the job queue through the window (offscreen, tiny model): Stop ends a job after its
// current step, keeps what was finished and pauses the queue; two queued jobs run one after the
// other into two videos.
#include <QFile>
#include <QPlainTextEdit>
#include <QTemporaryDir>
#include <QTest>

#include "framesmith/job_folder.h"
#include "job_output.h"
#include "jobs_panel.h"
#include "parameters_form.h"
#include "preview_player.h"
#include "ui_test_support.h"

using namespace framesmith;
using namespace framesmith::ui;

class QueueGuiTest : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir dir_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    app::ensure_tiny_model(dir_.filePath("tiny-model"));
  }

  void stop_keeps_the_finished_sections_and_pauses_the_queue() {
    QTemporaryDir dir;
    StartOptions o = test::small_job_options(dir);
    o.tiny_model_dir = o.model_dir = dir_.filePath("tiny-model");
    o.seconds = 3;  // 8 sections at window 3: plenty left when Stop comes
    MainWindow w(o);
    w.show();
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    QSignalSpy sections(w.worker(), &app::GenerationWorker::video_chunk);
    QVERIFY(w.start_generation());
    QVERIFY(w.start_generation());  // a second job waits
    QCOMPARE(w.queued_count(), 1);
    QVERIFY(sections.wait(40000));  // the first section is decoded
    w.stop_generation();
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toInt(), int(StatusCode::kCancelled));
    QVERIFY(!w.is_running());
    QVERIFY(w.queue_paused());  // the waiting job did not start by itself
    QCOMPARE(w.queued_count(), 1);
    QVERIFY(QFile::exists(w.last_video_path()));  // the finished sections were kept
    QVERIFY(w.player()->frame_count() > 0);
    QVERIFY2(w.status_text().startsWith("cancelled"), qPrintable(w.status_text()));
    QTest::qWait(300);
    QCOMPARE(finished.count(), 1);
    // Resume runs the waiting job.
    w.resume_queue();
    QVERIFY(w.is_running());
    w.stop_generation();
    QVERIFY(finished.wait(30000));
  }

  void a_stopped_job_resumes_from_its_folder() {
    QTemporaryDir dir;
    StartOptions o = test::small_job_options(dir);
    o.tiny_model_dir = o.model_dir = dir_.filePath("tiny-model");
    o.seconds = 2;
    MainWindow w(o);
    w.show();
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    QSignalSpy sections(w.worker(), &app::GenerationWorker::video_chunk);
    QVERIFY(w.start_generation());
    QVERIFY(sections.wait(40000));
    w.stop_generation();
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toInt(), int(StatusCode::kCancelled));
    const QString video = w.last_video_path();
    const QString job_dir = QString::fromStdString(app::default_job_dir(video.toStdString()));
    const JobFolderInfo before = inspect_job_folder(job_dir.toStdString());
    QVERIFY(before.has_job);
    QVERIFY(before.sections_done >= 1);
    QVERIFY(before.sections_done < before.sections_total);

    QVERIFY(w.resume_job(job_dir));
    QVERIFY(finished.wait(60000));
    QCOMPARE(finished.last().first().toInt(), int(StatusCode::kOk));
    QCOMPARE(w.last_video_path(), video);  // the video goes where the job first meant it to
    QVERIFY(inspect_job_folder(job_dir.toStdString()).finished());
    QVERIFY(QFile::exists(video));

    // A finished job and a folder without a job are refused with a message.
    QVERIFY(!w.resume_job(job_dir));
    QVERIFY2(w.last_message().contains("finished"), qPrintable(w.last_message()));
    QVERIFY(!w.resume_job(dir.path()));
    QVERIFY2(w.last_message().contains("no Framesmith job"), qPrintable(w.last_message()));
  }

  void two_queued_jobs_run_one_after_the_other() {
    QTemporaryDir dir;
    StartOptions o = test::small_job_options(dir);
    o.tiny_model_dir = o.model_dir = dir_.filePath("tiny-model");
    MainWindow w(o);
    w.show();
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    QSignalSpy idle(&w, &MainWindow::queue_idle);
    QVERIFY(w.start_generation());
    GenerationRequest second = w.current_request();
    second.seed = 8;
    second.prompt = "the second job";
    w.parameters()->apply(second);
    w.set_prompt("the second job");
    // Ctrl+Enter in the prompt queues it, as the Generate button would.
    w.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    auto* prompt = w.findChild<QPlainTextEdit*>("prompt");
    QVERIFY(prompt);
    prompt->setFocus();
    QTest::keyClick(prompt, Qt::Key_Return, Qt::ControlModifier);
    QCOMPARE(prompt->toPlainText(), QString("the second job"));  // no new line typed
    QCOMPARE(w.queued_count(), 1);
    QVERIFY(w.is_running());
    QVERIFY(idle.wait(90000));
    QCOMPARE(finished.count(), 2);
    QCOMPARE(finished.at(0).first().toInt(), int(StatusCode::kOk));
    QCOMPARE(finished.at(1).first().toInt(), int(StatusCode::kOk));
    QCOMPARE(w.jobs_panel()->history_count(), 2);
    const app::HistoryEntry newest = w.jobs_panel()->history_entry(0);
    const app::HistoryEntry oldest = w.jobs_panel()->history_entry(1);
    QVERIFY(newest.video_path != oldest.video_path);
    QCOMPARE(newest.request.prompt, std::string("the second job"));
    QCOMPARE(newest.request.seed, std::uint64_t(8));
    QCOMPARE(oldest.request.seed, std::uint64_t(7));
    QVERIFY(QFile::exists(newest.video_path) && QFile::exists(oldest.video_path));
  }
};

QTEST_MAIN(QueueGuiTest)
#include "queue_gui_test.moc"
