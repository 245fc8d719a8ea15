// The window without running jobs (offscreen): widgets wire into the engine's request, settings
// survive a restart, bad images and incomplete models are refused with a message, a previous
// job's parameters load back, the tiny model is preselected on the very first start.
#include <QFile>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSpinBox>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QTest>

#include "framesmith/request_json.h"
#include "image_input.h"
#include "inputs_panel.h"
#include "job_output.h"
#include "jobs_panel.h"
#include "model_picker.h"
#include "parameters_form.h"
#include "ui_test_support.h"
#include "video_writer.h"

using namespace framesmith;
using namespace framesmith::ui;

class MainWindowTest : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir shared_;  // the tiny model, written once
  QString tiny_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(shared_.isValid());
    tiny_ = shared_.filePath("tiny-model");
    app::ensure_tiny_model(tiny_);
  }

  void widgets_wire_into_the_request() {
    QTemporaryDir dir;
    StartOptions o = test::isolated_options(dir);
    o.model_dir = tiny_;
    o.image_path = test::write_test_image(dir.filePath("in.png"));
    o.prompt = "a cat";
    o.negative_prompt = "blurry";
    o.seconds = 3;
    o.steps = 4;
    o.resolution = 96;
    o.window = 5;
    o.seed = 1234;
    o.variant = "f1";
    o.vram_budget = "64MiB";
    MainWindow w(o);
    const GenerationRequest r = w.current_request();
    QCOMPARE(QString::fromStdString(r.model_dir), tiny_);
    QCOMPARE(r.prompt, std::string("a cat"));
    QCOMPARE(r.negative_prompt, std::string("blurry"));
    QCOMPARE(r.seconds, 3.0);
    QCOMPARE(r.steps, 4);
    QCOMPARE(r.resolution, 96);
    QCOMPARE(r.latent_window, 5);
    QCOMPARE(r.seed, std::uint64_t(1234));
    QCOMPARE(r.variant, TransformerVariant::kF1);
    QCOMPARE(r.vram_budget_bytes, std::int64_t(64) << 20);
    QCOMPARE(r.device, std::string("cpu"));
    QCOMPARE(r.image.width, 160);
    QCOMPARE(r.image.height, 120);
    QCOMPARE(int(r.image.rgb.size()), 160 * 120 * 3);
    // A change in the form is a change in the request.
    GenerationRequest changed = r;
    changed.steps = 9;
    changed.cfg = 2.5;
    w.parameters()->apply(changed);
    QCOMPARE(w.current_request().steps, 9);
    QCOMPARE(w.current_request().cfg, 2.5);
    // The estimate names sections, frames and the crop at once, and the engine's memory plan
    // for the 64 MiB budget a moment later.
    QVERIFY2(w.parameters()->estimate_text().contains("frames"),
             qPrintable(w.parameters()->estimate_text()));
    QTRY_VERIFY_WITH_TIMEOUT(w.inputs()->plan_summary().contains("peak"), 20000);
    QVERIFY2(w.inputs()->plan_summary().contains("of 64.0 MiB"),
             qPrintable(w.inputs()->plan_summary()));
    QVERIFY(w.parameters()->estimate_text().contains(w.inputs()->plan_summary()));
    QVERIFY(w.model_picker()->status().usable);
    QVERIFY(w.model_picker()->is_tiny());
  }

  // A video to extend replaces the start image in the request (its path and context; the job
  // decodes it), is refused with a message when the file is not a video, and clears again.
  void video_to_extend_goes_into_the_request() {
    QTemporaryDir dir;
    StartOptions o = test::isolated_options(dir);
    o.model_dir = tiny_;
    o.prompt = "a cat";
    o.variant = "f1";
    const QString clip = dir.filePath("clip.mp4");
    {
      app::VideoWriter w;
      w.open(clip.toStdString(), 64, 48, 24);
      const std::vector<std::uint8_t> rgb(64 * 48 * 3, 90);
      for (int i = 0; i < 8; ++i) w.write_frame(rgb.data(), 64 * 3);
      w.finish();
    }
    o.video_path = clip;
    MainWindow w(o);
    auto* info = w.inputs()->findChild<QLabel*>("video_info");
    QVERIFY2(info->text().contains("8 frames, 64 × 48, 24.00 fps"), qPrintable(info->text()));
    w.inputs()->findChild<QSpinBox*>("video_context")->setValue(7);
    const GenerationRequest r = w.current_request();  // no start image needed
    QCOMPARE(QString::fromStdString(r.input_video_source.path), clip);
    QCOMPARE(r.video_context_frames, 7);
    QCOMPARE(r.image.count, 0);
    QVERIFY(!w.inputs()->set_input_video(dir.filePath("missing.mp4")));
    QCOMPARE(w.inputs()->input_video(), clip);  // a refused file leaves the choice as it was
    QVERIFY(w.inputs()->set_input_video(QString()));
    QVERIFY(w.inputs()->input_video().isEmpty());
  }

  void settings_round_trip() {
    QTemporaryDir dir;
    StartOptions o = test::isolated_options(dir);
    o.model_dir = tiny_;
    o.image_path = test::write_test_image(dir.filePath("in.png"));
    {
      MainWindow w(o);
      w.set_prompt("the settings remember me");
      GenerationRequest r = w.current_request();
      r.seconds = 7.5;
      r.steps = 12;
      r.distilled_cfg = 8;
      r.cfg_rescale = 0.3;
      r.seed = 99;
      r.cache = StepCache::kNone;
      r.vram_budget_bytes = 6LL << 30;
      r.preserved_memory_bytes = 8LL << 30;
      w.parameters()->apply(r);
      w.parameters()->set_crf(23);
      w.parameters()->set_randomize_seed(true);
      w.save_settings();
    }
    StartOptions again = test::isolated_options(dir);  // no model, image or prompt given
    MainWindow w(again);
    QCOMPARE(w.model_picker()->location(), tiny_);
    QCOMPARE(w.image_input()->source(), QFileInfo(dir.filePath("in.png")).absoluteFilePath());
    QCOMPARE(w.output_dir(), QDir::cleanPath(o.output_dir));
    const GenerationRequest r = w.current_request();
    QCOMPARE(r.prompt, std::string("the settings remember me"));
    QCOMPARE(r.seconds, 7.5);
    QCOMPARE(r.steps, 12);
    QCOMPARE(r.distilled_cfg, 8.0);
    QCOMPARE(r.cfg_rescale, 0.3);
    QCOMPARE(r.seed, std::uint64_t(99));
    QVERIFY(r.cache == StepCache::kNone);
    QCOMPARE(r.vram_budget_bytes, 6LL << 30);
    QCOMPARE(r.preserved_memory_bytes, 8LL << 30);
    QCOMPARE(w.parameters()->crf(), 23);
    QVERIFY(w.parameters()->randomize_seed());
  }

  void bad_image_is_refused_with_a_message() {
    QTemporaryDir dir;
    StartOptions o = test::isolated_options(dir);
    o.model_dir = tiny_;
    o.prompt = "a cat";
    MainWindow w(o);
    QFile junk(dir.filePath("broken.jpg"));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write(QByteArray(100, 'x'));
    junk.close();
    QVERIFY(!w.load_image(junk.fileName()));
    QVERIFY2(w.last_message().contains("broken.jpg"), qPrintable(w.last_message()));
    QVERIFY(w.statusBar()->currentMessage().contains("broken.jpg"));
    QVERIFY(!w.load_image(dir.filePath("missing.png")));
    QVERIFY(w.last_message().contains("missing.png"));
    // Without an image Start refuses, saying why, and nothing is queued.
    QVERIFY(!w.start_generation());
    QVERIFY2(w.last_message().contains("start image"), qPrintable(w.last_message()));
    QVERIFY(!w.is_running());
    QCOMPARE(w.queued_count(), 0);
  }

  void incomplete_model_says_what_is_missing() {
    QTemporaryDir dir;
    QDir().mkpath(dir.filePath("partial/transformer"));
    QFile::copy(tiny_ + "/transformer/config.json",
                dir.filePath("partial/transformer/config.json"));
    QFile::copy(tiny_ + "/transformer/diffusion_pytorch_model.safetensors",
                dir.filePath("partial/transformer/diffusion_pytorch_model.safetensors"));
    StartOptions o = test::isolated_options(dir);
    o.model_dir = dir.filePath("partial");
    o.image_path = test::write_test_image(dir.filePath("in.png"));
    o.prompt = "a cat";
    MainWindow w(o);
    const app::ModelStatus& s = w.model_picker()->status();
    QVERIFY(!s.usable);
    QVERIFY2(s.missing.contains("vae") && s.missing.contains("text_encoder"),
             qPrintable(s.summary));
    QVERIFY(!w.start_generation());
    QVERIFY2(w.last_message().contains("vae"), qPrintable(w.last_message()));
  }

  void parameters_load_back_from_sidecar_and_mp4() {
    QTemporaryDir dir;
    StartOptions o = test::isolated_options(dir);
    o.model_dir = tiny_;
    MainWindow w(o);
    GenerationRequest job;
    job.model_dir = tiny_.toStdString();
    job.prompt = "from the sidecar";
    job.negative_prompt = "nothing";
    job.seconds = 2.5;
    job.seed = 4242;
    job.steps = 6;
    job.latent_window = 4;
    job.resolution = 112;
    job.variant = TransformerVariant::kF1;
    const QString video = dir.filePath("out/old.mp4");
    QDir().mkpath(dir.filePath("out"));
    app::JobOutput out(video.toStdString(), 16, job);
    Frames frames;
    frames.width = 32;
    frames.height = 32;
    frames.count = 3;
    frames.rgb.assign(32 * 32 * 3 * 3, 90);
    out.write_final(frames);
    out.write_input_image(Frames{32, 32, 1, std::vector<std::uint8_t>(32 * 32 * 3, 200)});

    QVERIFY(w.load_params_file(dir.filePath("out/old.json")));
    GenerationRequest r = w.current_request();
    QCOMPARE(r.prompt, job.prompt);
    QCOMPARE(r.negative_prompt, job.negative_prompt);
    QCOMPARE(r.seed, job.seed);
    QCOMPARE(r.steps, 6);
    QCOMPARE(r.latent_window, 4);
    QCOMPARE(r.resolution, 112);
    QCOMPARE(r.variant, TransformerVariant::kF1);
    QCOMPARE(r.image.width, 32);  // the job's cropped start image came with it

    w.set_prompt("changed");
    QVERIFY(w.load_params_file(video));  // the same parameters from the MP4's metadata
    QCOMPARE(w.current_request().prompt, job.prompt);

    QVERIFY(!w.load_params_file(dir.filePath("in.png")));  // not parameters: a message
    QVERIFY(!w.last_message().isEmpty());

    // The history lists the job (the output folder is scanned).
    w.set_output_dir(dir.filePath("out"));
    QCOMPARE(w.jobs_panel()->history_count(), 1);
    QCOMPARE(w.jobs_panel()->history_entry(0).request.seed, std::uint64_t(4242));
  }

  void first_start_preselects_the_tiny_model() {
    QTemporaryDir dir;
    StartOptions o = test::isolated_options(dir);  // nothing stored, no --model
    MainWindow w(o);
    QTRY_VERIFY_WITH_TIMEOUT(!w.model_picker()->busy(), 60000);
    QCOMPARE(w.model_picker()->location(), o.tiny_model_dir);
    QVERIFY(w.model_picker()->status().usable);
    QVERIFY(QFile::exists(o.tiny_model_dir + "/transformer/config.json"));
    // Demo-friendly settings for the tiny model, FramePack's defaults otherwise untouched.
    GenerationRequest r;
    w.parameters()->fill(r);
    QCOMPARE(r.resolution, 192);
    QCOMPARE(r.steps, 10);
    QCOMPARE(r.latent_window, 5);
    QCOMPARE(r.distilled_cfg, 10.0);
  }
};

QTEST_MAIN(MainWindowTest)
#include "main_window_test.moc"
