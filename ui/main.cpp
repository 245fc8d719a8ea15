// framesmith: the desktop studio. Options pre-fill the window (the demo and screenshots use them).
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTimer>
#include <cstdio>
#include <cstdlib>

#include "first_run.h"
#include "framesmith/units.h"
#include "main_window.h"
#include "model_picker.h"

namespace {

framesmith::ui::StartOptions parse(QCommandLineParser& p) {
  framesmith::ui::StartOptions o;
  o.model_dir = p.value("model");
  o.image_path = p.value("image");
  o.prompt = p.value("prompt");
  o.negative_prompt = p.value("negative-prompt");
  o.output_dir = p.value("output-dir");
  o.settings_file = p.value("settings");
  o.variant = p.value("variant");
  o.device = p.value("device");
  o.vram_budget = p.value("vram-budget");
  o.loras = p.values("lora");
  o.end_image_path = p.value("end-image");
  o.video_path = p.value("video");
  if (p.isSet("seconds")) o.seconds = p.value("seconds").toDouble();
  if (p.isSet("steps")) o.steps = p.value("steps").toInt();
  if (p.isSet("resolution")) o.resolution = p.value("resolution").toInt();
  if (p.isSet("window")) o.window = p.value("window").toInt();
  if (p.isSet("seed")) {
    // Exact, as the CLI parses it: a malformed seed is refused, -1 draws one.
    try {
      const framesmith::SeedChoice s = framesmith::parse_seed(p.value("seed").toStdString());
      o.seed = s.random ? framesmith::random_seed() : s.seed;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "framesmith: %s\n", e.what());
      std::exit(2);
    }
  }
  if (p.isSet("teacache")) o.cache = framesmith::StepCache::kTeaCache;
  if (p.isSet("no-teacache")) o.cache = framesmith::StepCache::kNone;
  if (p.isSet("cache")) {
    try {
      o.cache = framesmith::parse_step_cache(p.value("cache").toStdString());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "framesmith: %s\n", e.what());
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication::setHighDpiScaleFactorRoundingPolicy(
      Qt::HighDpiScaleFactorRoundingPolicy::PassThrough);
  QApplication app(argc, argv);
  QApplication::setApplicationName("Framesmith");
  // Wayland compositors find the icon and the .desktop entry through the app id.
  QGuiApplication::setDesktopFileName(framesmith::app::kAppId);
  QApplication::setWindowIcon(QIcon::fromTheme(framesmith::app::kAppId));
  QApplication::setOrganizationName("Framesmith");
  QApplication::setApplicationVersion(QString::fromStdString(framesmith::engine_version()));

  QCommandLineParser parser;
  parser.setApplicationDescription("Framesmith studio: image-to-video with FramePack models.");
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addOptions({
      {{"m", "model"}, "Model folder, or hf for the Hugging Face cache.", "DIR"},
      {{"i", "image"}, "Start image.", "FILE"},
      {{"p", "prompt"}, "Prompt.", "TEXT"},
      {"negative-prompt", "Negative prompt.", "TEXT"},
      {{"o", "output-dir"}, "Where videos go.", "DIR"},
      {"variant", "original or f1.", "NAME"},
      {"seconds", "Video length in seconds.", "S"},
      {"steps", "Sampling steps.", "N"},
      {"resolution", "Bucket resolution (64..1024, multiple of 16).", "PX"},
      {"window", "Latent window size.", "N"},
      {"seed", "Seed: 0 to 18446744073709551615, or -1 for a random one.", "N"},
      {"teacache", "Use TeaCache."},
      {"no-teacache", "Do not use TeaCache."},
      {"cache", "Step cache: none, teacache or magcache.", "NAME"},
      {"device", "cpu, cuda or cuda:N.", "DEVICE"},
      {"vram-budget", "Device memory budget (e.g. 6GiB; on cpu a simulated device).", "SIZE"},
      {"lora", "A LoRA file and its strength (FILE[:STRENGTH]); repeatable.", "FILE"},
      {"end-image", "End image (original model: the video's last frame).", "FILE"},
      {"video", "A video to extend instead of starting from the image.", "FILE"},
      {"settings", "Settings file (INI) instead of the usual place.", "FILE"},
      {"autostart", "Start generating at once."},
      {"screenshot",
       "Save the window as PNG when the jobs are done (or after 2 s without "
       "--autostart) and quit.",
       "FILE"},
      {"screenshot-delay",
       "Take the screenshot this long after the start instead (a job in "
       "progress is stopped).",
       "MS"},
  });
  parser.process(app);

  framesmith::ui::MainWindow w(parse(parser));
  w.show();
  if (parser.isSet("autostart")) {
    // Starts once the window has settled and the tiny model (first start) is written.
    auto* poll = new QTimer(&w);
    QObject::connect(poll, &QTimer::timeout, &w, [&w, poll] {
      if (w.model_picker()->busy()) return;
      poll->stop();
      if (!w.start_generation()) {
        std::fprintf(stderr, "framesmith: cannot start: %s\n", qPrintable(w.last_message()));
        QApplication::exit(2);
      }
    });
    poll->start(300);
  }
  if (parser.isSet("screenshot")) {
    const QString path = parser.value("screenshot");
    auto shoot = [&w, path](int code) {
      QTimer::singleShot(500, &w, [&w, path, code] {
        w.grab().save(path);
        QApplication::exit(code);
      });
    };
    if (parser.isSet("screenshot-delay"))
      QTimer::singleShot(parser.value("screenshot-delay").toInt(), &w, [shoot] { shoot(0); });
    else if (parser.isSet("autostart"))
      QObject::connect(&w, &framesmith::ui::MainWindow::queue_idle, &w,
                       [&w, shoot] { shoot(w.last_status() == 1 ? 0 : 1); });
    else
      QTimer::singleShot(2000, &w, [shoot] { shoot(0); });
  }
  return app.exec();
}
