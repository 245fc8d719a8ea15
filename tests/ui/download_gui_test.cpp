// Model > Download… against the hub fixture on loopback: the plan shown before anything is
// fetched, progress while the window keeps running, Pause keeps a partial that the next
// Download resumes, and a finished download becomes the studio's model (offscreen).
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QToolButton>

#include "download_dialog.h"
#include "model_picker.h"
#include "support/hub_server.h"
#include "ui_test_support.h"

using namespace framesmith;
using framesmith::test::Fault;
using framesmith::test::HubServer;

namespace {

std::string blob(std::size_t n, char c) {
  return std::string(n, c);
}

// FramePack's three repositories, with a file per component that the locator looks for.
void add_framepack_repos(HubServer& s) {
  s.add_repo({"lllyasviel/FramePackI2V_HY",
              "1111111111111111111111111111111111111111",
              {{"config.json", "{}", false, 0},
               {"diffusion_pytorch_model.safetensors", blob(600000, 't'), true, 0}},
              "",
              false});
  s.add_repo({"hunyuanvideo-community/HunyuanVideo",
              "2222222222222222222222222222222222222222",
              {{"vae/config.json", "{}", false, 0},
               {"text_encoder/config.json", "{}", false, 0},
               {"text_encoder_2/config.json", "{}", false, 0},
               {"tokenizer/tokenizer.json", "{}", false, 0},
               {"tokenizer_2/vocab.json", "{}", false, 0},
               {"tokenizer_2/merges.txt", "#", false, 0},
               {"transformer/diffusion_pytorch_model.safetensors", blob(1000, 'x'), true, 0}},
              "",
              false});
  s.add_repo({"lllyasviel/flux_redux_bfl",
              "3333333333333333333333333333333333333333",
              {{"image_encoder/config.json", "{}", false, 0},
               {"feature_extractor/preprocessor_config.json", "{}", false, 0}},
              "",
              false});
}

}  // namespace

class DownloadGuiTest : public QObject {
  Q_OBJECT
 private:
  hub::HubConfig config_for(const HubServer& s) {
    hub::HubConfig c;
    c.endpoint = s.url();
    c.backoff_first_s = 0.01;
    return c;
  }

 private Q_SLOTS:
  void plan_then_download_then_in_use() {
    HubServer server;
    add_framepack_repos(server);
    QTemporaryDir dir;
    ui::StartOptions o = ui::test::isolated_options(dir);
    ui::MainWindow w(o);
    // First start: the tiny model is in use, and the model row offers the download.
    auto* offer = w.model_picker()->findChild<QToolButton*>("download_models");
    QVERIFY(offer);
    QTRY_VERIFY_WITH_TIMEOUT(w.model_picker()->is_tiny(), 20000);
    QVERIFY(!offer->isHidden());
    offer->click();
    ui::DownloadDialog* d = w.download_dialog();
    QVERIFY(d && d->isVisible());
    d->set_config(config_for(server));
    const QString to = dir.filePath("models/framepack");
    d->set_target_folder(to);
    d->check();
    auto* plan = d->findChild<QLabel*>("download_plan");
    QTRY_VERIFY_WITH_TIMEOUT(plan->text().contains("total"), 10000);
    QVERIFY2(plan->text().contains("hunyuanvideo-community/HunyuanVideo@main"),
             qPrintable(plan->text()));
    QVERIFY(!QDir(to).exists());  // Check lists, fetches nothing
    QSignalSpy done(d, &ui::DownloadDialog::downloaded);
    d->start();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 20000);
    QCOMPARE(done.at(0).at(0).toString(), QDir::cleanPath(to));
    QVERIFY(QFile::exists(to + "/transformer/diffusion_pytorch_model.safetensors"));
    QVERIFY(!QFile::exists(to + "/transformer/config.json.incomplete"));
    QVERIFY(!QDir(to + "/transformer").entryList().contains("README.md"));
    QCOMPARE(w.model_picker()->location(), QDir::cleanPath(to));
    QVERIFY2(w.model_picker()->status().usable, qPrintable(w.model_picker()->status().summary));
    QVERIFY(offer->isHidden());  // a real model set now: nothing left to offer
    QVERIFY(d->log_text().contains("fetched"));
    // The studio's log file says what came from where.
    QFile log(o.log_file);
    QVERIFY(log.open(QIODevice::ReadOnly));
    const QString logged = QString::fromUtf8(log.readAll());
    QVERIFY2(
        logged.contains(
            "download: lllyasviel/FramePackI2V_HY: diffusion_pytorch_model.safetensors: fetched"),
        qPrintable(logged));
    // FRAMESMITH_SCREENSHOT_DIR=DIR saves what the dialog looks like, for a person to check.
    if (const QByteArray shots = qgetenv("FRAMESMITH_SCREENSHOT_DIR"); !shots.isEmpty())
      d->grab().save(QString::fromUtf8(shots) + "/download-dialog.png");
  }

  void pause_keeps_a_partial_and_download_resumes_it() {
    HubServer server;
    add_framepack_repos(server);
    server.add_fault(Fault::slow("diffusion_pytorch_model.safetensors", 300000));
    QTemporaryDir dir;
    ui::DownloadDialog d;
    d.set_config(config_for(server));
    const QString to = dir.filePath("fp");
    d.set_target_folder(to);
    // The window keeps running while the bytes come: a timer on the GUI thread keeps ticking.
    int ticks = 0;
    QTimer timer;
    QObject::connect(&timer, &QTimer::timeout, [&] { ++ticks; });
    timer.start(20);
    d.start();
    auto* status = d.findChild<QLabel*>("download_status");
    QTRY_VERIFY_WITH_TIMEOUT(status->text().contains("/s"), 10000);
    QVERIFY(d.running());
    QTest::qWait(300);
    QVERIFY2(ticks >= 8, qPrintable(QString::number(ticks)));
    QSignalSpy state(&d, &ui::DownloadDialog::state_changed);
    d.pause();
    QTRY_COMPARE_WITH_TIMEOUT(state.count(), 1, 10000);
    QVERIFY2(status->text().startsWith("Paused"), qPrintable(status->text()));
    const QStringList partials = QDir(to + "/.download").entryList({"*.incomplete"});
    QCOMPARE(partials.size(), 1);
    QVERIFY(!QFile::exists(to + "/transformer/diffusion_pytorch_model.safetensors"));
    QSignalSpy done(&d, &ui::DownloadDialog::downloaded);
    d.start();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 20000);
    QVERIFY2(d.log_text().contains("resumed at"), qPrintable(d.log_text()));
    QCOMPARE(QFile(to + "/transformer/diffusion_pytorch_model.safetensors").size(), 600000);
  }

  void errors_are_shown_and_nothing_is_used() {
    HubServer server;  // no repositories: the hub says RepoNotFound
    QTemporaryDir dir;
    ui::DownloadDialog d;
    d.set_config(config_for(server));
    d.set_target_folder(dir.filePath("fp"));
    QSignalSpy done(&d, &ui::DownloadDialog::downloaded);
    QSignalSpy state(&d, &ui::DownloadDialog::state_changed);
    d.start();
    QTRY_COMPARE_WITH_TIMEOUT(state.count(), 1, 10000);
    QCOMPARE(done.count(), 0);
    QVERIFY2(d.log_text().contains("no such repository"), qPrintable(d.log_text()));
    QVERIFY(!QDir(dir.filePath("fp")).exists());
  }
};

QTEST_MAIN(DownloadGuiTest)
#include "download_gui_test.moc"
