// The studio's widgets on their own (offscreen): memory graph, event log, image input, player,
// parameters, job queue and the rotating log.
#include <qcustomplot.h>

#include <QApplication>
#include <QClipboard>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QImage>
#include <QListWidget>
#include <QMenu>
#include <QMimeData>
#include <QSignalSpy>
#include <QSlider>
#include <QTemporaryDir>
#include <QTest>
#include <QToolButton>
#include <QUrl>

#include "event_log.h"
#include "framesmith/image_bucket.h"
#include "image_input.h"
#include "job_estimate.h"
#include "job_queue.h"
#include "log_file.h"
#include "lora_list.h"
#include "memory_graph.h"
#include "parameters_form.h"
#include "preview_player.h"
#include "ui_test_support.h"
#include "video_writer.h"

using namespace framesmith;
using namespace framesmith::ui;

namespace {

Event memory_sample(double t, double allocated, const std::string& phase) {
  Event e;
  e.type = EventType::kMemory;
  e.t_s = t;
  e.phase = phase;
  e.numbers = {{"allocated", allocated},
               {"reserved", allocated * 1.25},
               {"device_used", allocated * 1.5},
               {"total", 64.0 * 1024 * 1024},
               {"budget", 48.0 * 1024 * 1024}};
  return e;
}

Event oom_event(double t) {
  Event e;
  e.type = EventType::kOomRecovered;
  e.t_s = t;
  e.phase = "decode chunk 3";
  e.numbers = {{"requested", 2.0 * 1024 * 1024 * 1024}, {"free", 512.0 * 1024 * 1024}};
  e.texts = {{"action", "chunk 16→4"}, {"outcome", "ok"}};
  return e;
}

}  // namespace

class WidgetsTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void graph_draws_samples_bands_and_markers() {
    MemoryGraph g;
    g.resize(600, 300);
    g.show();
    g.set_preserved_bytes(16.0 * 1024 * 1024);
    Event alloc;
    alloc.type = EventType::kAllocator;
    alloc.phase = "setup";
    alloc.texts = {{"action", "expandable segments"}};
    g.add_event(alloc);
    Event plan;  // plans name phases to come: no band of their own
    plan.type = EventType::kPlan;
    plan.phase = "decode";
    g.add_event(plan);
    for (int i = 0; i < 40; ++i)
      g.add_event(
          memory_sample(i * 0.1, (4 + i) * 1024.0 * 1024, i < 10 ? "text" : "section 1 step 2"));
    g.add_event(oom_event(3.0));
    g.flush();
    QCOMPARE(g.sample_count(), 40);
    QCOMPARE(g.marker_count(), 2);
    // setup (the allocator event's phase), text, sampling, decode (the OOM's phase).
    QCOMPARE(g.band_count(), 4);
    QCOMPARE(g.band_label(0), QString("setup"));
    QCOMPARE(g.band_label(1), QString("text"));
    QCOMPARE(g.band_label(2), QString("sampling"));
    QCOMPARE(g.band_label(3), QString("decode"));
    QVERIFY(g.marker_tooltip(0).contains("expandable segments"));
    const QString tip = g.marker_tooltip(1);
    QVERIFY2(tip.contains("2.0 GiB") && tip.contains("512.0 MiB") && tip.contains("chunk 16→4") &&
                 tip.contains("outcome"),
             qPrintable(tip));
    // allocated, reserved, device used, total, budget, total - preserved, two marker kinds.
    int with_data = 0;
    for (int i = 0; i < g.plot()->graphCount(); ++i)
      with_data += g.plot()->graph(i)->data()->isEmpty() ? 0 : 1;
    QCOMPARE(with_data, 8);
    QVERIFY(g.following());
    QVERIFY(g.plot()->xAxis->range().upper >= 3.9);
  }

  void graph_pauses_on_drag_and_drops_old_samples() {
    MemoryGraph g;
    g.resize(500, 250);
    g.show();
    QTest::mousePress(g.plot(), Qt::LeftButton, {}, QPoint(200, 120));
    QTest::mouseRelease(g.plot(), Qt::LeftButton, {}, QPoint(220, 120));
    QVERIFY(!g.following());
    g.set_following(true);
    QVERIFY(g.following());
    // An hour and more of samples: the oldest go (bounded memory), the newest stay.
    for (int i = 0; i <= 4000; i += 2) g.add_event(memory_sample(i, 1 << 20, "section 1 step 1"));
    QVERIFY(g.sample_count() < 2001);
    QVERIFY(g.plot()->graph(0)->data()->size() < 2001);
    g.flush();
    QVERIFY(g.plot()->xAxis->range().lower > 3000);
  }

  void graph_replots_only_while_visible() {
    MemoryGraph g;
    g.resize(400, 200);
    QTest::qWait(20);  // QCustomPlot's own first (queued) replot
    QSignalSpy replots(g.plot(), &QCustomPlot::afterReplot);
    g.add_event(memory_sample(0.5, 1 << 20, "text"));
    QTest::qWait(350);  // hidden: samples are kept, nothing is drawn
    QCOMPARE(replots.count(), 0);
    g.show();
    QVERIFY(QTest::qWaitForWindowExposed(&g));
    QTRY_VERIFY(replots.count() > 0);
    g.hide();
    QTest::qWait(50);
    const int drawn = replots.count();
    for (int i = 1; i < 20; ++i) g.add_event(memory_sample(0.5 + i * 0.05, 2 << 20, "text"));
    QTest::qWait(350);
    QCOMPARE(replots.count(), drawn);
    QCOMPARE(g.sample_count(), 20);
  }

  void graph_exports_png_and_csv() {
    QTemporaryDir dir;
    MemoryGraph g;
    g.resize(500, 250);
    g.show();
    for (int i = 0; i < 5; ++i)
      g.add_event(memory_sample(i, (i + 1) * 1048576.0, "decode chunk 1"));
    g.add_event(oom_event(2.5));
    QVERIFY(g.export_png(dir.filePath("m.png")));
    QVERIFY(!QImage(dir.filePath("m.png")).isNull());
    QVERIFY(g.export_csv(dir.filePath("m.csv")));
    QFile f(dir.filePath("m.csv"));
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QStringList lines = QString::fromUtf8(f.readAll()).trimmed().split('\n');
    QCOMPARE(lines.size(), 7);  // header, 5 samples, 1 marker, in time order
    QVERIFY(lines[0].startsWith("t_s,type,phase,allocated"));
    QVERIFY2(lines[4].contains("oom_recovered") && lines[4].contains("2147483648") &&
                 lines[4].contains("chunk 16→4"),
             qPrintable(lines[4]));
    QVERIFY(lines[1].contains(",memory,decode chunk 1,1048576,"));
  }

  void event_log_filters_and_copies() {
    EventLog log;
    log.add_event(memory_sample(0.1, 1, "text"));  // samples belong to the graph
    Event p;
    p.type = EventType::kProgress;
    p.phase = "sampling";
    p.numbers = {{"step", 1}};
    log.add_event(p);
    log.add_event(oom_event(1.5));
    log.add_message("job 1 started");
    QCOMPARE(log.row_count(), 3);
    log.set_filter(EventLog::Filter::kOom);
    QCOMPARE(log.visible_row_count(), 1);
    QVERIFY(log.visible_text(false).contains("chunk 16→4"));
    log.set_filter(EventLog::Filter::kAll);
    log.set_text_filter("JOB 1");
    QCOMPARE(log.visible_row_count(), 1);
    log.set_text_filter("");
    log.copy_to_clipboard();
    const QString copied = QApplication::clipboard()->text();
    QCOMPARE(copied.count('\n'), 2);
    QVERIFY(copied.contains("oom_recovered\tdecode chunk 3\t"));
  }

  void image_input_shows_bucket_and_refuses_junk() {
    QTemporaryDir dir;
    ImageInput input;
    QSignalSpy rejected(&input, &ImageInput::rejected);
    QFile junk(dir.filePath("junk.png"));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write("this is not a picture");
    junk.close();
    QVERIFY(!input.load_file(junk.fileName()));
    QCOMPARE(rejected.count(), 1);
    QVERIFY2(input.error().contains("junk.png"), qPrintable(input.error()));
    QVERIFY(!input.has_image());

    QVERIFY(input.load_file(test::write_test_image(dir.filePath("a.png"), QSize(1024, 768))));
    QVERIFY(input.error().isEmpty());
    QCOMPARE(input.frames().width, 1024);
    // FramePack's 640 table: 4:3 goes to 544 x 704 (h x w).
    QCOMPARE(input.bucket().width, 704);
    QCOMPARE(input.bucket().height, 544);
    QVERIFY2(input.caption().contains("704 × 544"), qPrintable(input.caption()));
    input.set_resolution(128);
    const BucketSize b = start_image_bucket(1024, 768, 128);
    QCOMPARE(input.bucket().width, b.width);
    QVERIFY(b.width % 16 == 0 && b.height % 16 == 0 && b.width > b.height);

    // Drop: a file dragged from a file manager.
    const QString dropped = test::write_test_image(dir.filePath("dropped.png"), QSize(90, 160));
    QMimeData drop_data;
    drop_data.setUrls({QUrl::fromLocalFile(dropped)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &drop_data, Qt::LeftButton,
                          Qt::NoModifier);
    QCoreApplication::sendEvent(&input, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &drop_data, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(&input, &drop);
    QCOMPARE(input.frames().width, 90);
    QCOMPARE(input.source(), QFileInfo(dropped).absoluteFilePath());

    // Paste: a picture with transparency is composited on white.
    QImage transparent(8, 6, QImage::Format_ARGB32);
    transparent.fill(Qt::transparent);
    auto* mime = new QMimeData;
    mime->setImageData(transparent);
    QApplication::clipboard()->setMimeData(mime);
    QVERIFY(input.paste_from_clipboard());
    QCOMPARE(input.frames().width, 8);
    QCOMPARE(int(input.frames().rgb[0]), 255);
    QCOMPARE(input.source(), QString("clipboard"));
  }

  void player_grows_and_scrubs() {
    PreviewPlayer player;
    player.resize(400, 300);
    player.show();
    QList<QImage> frames;
    for (int i = 0; i < 5; ++i) {
      QImage f(32, 24, QImage::Format_RGB888);
      f.fill(QColor(i * 50, 0, 0));
      frames << f;
    }
    player.show_latent_preview(frames[0], "latent preview");
    player.set_frames(frames.mid(0, 3));
    QVERIFY(player.playing());
    player.set_frames(frames);  // the video grew: playback goes on
    QCOMPARE(player.frame_count(), 5);
    auto* slider = player.findChild<QSlider*>();
    QVERIFY(slider);
    QCOMPARE(slider->maximum(), 4);
    player.pause();
    slider->setValue(3);
    QCOMPARE(player.current_frame(), 3);
    QCOMPARE(player.view()->frame().pixelColor(0, 0).red(), 150);
  }

  // A video being made arrives as chunks: final frames plus a tail that the next chunk replaces.
  // The original variant's chunks grow the video at the front, F1's at the back; either way the
  // player ends up with every frame once, in video order.
  void player_places_chunks_by_frame_index() {
    auto frames_of = [](int first, int count, int shade) {
      QList<QImage> list;
      for (int i = first; i < first + count; ++i) {
        QImage f(8, 8, QImage::Format_RGB888);
        f.fill(QColor(i * 20, shade, 0));
        list << f;
      }
      return list;
    };
    auto check = [](PreviewPlayer& player, int count) {
      QCOMPARE(player.frame_count(), count);
      player.pause();
      for (int i = 0; i < count; ++i) {
        player.seek(i);
        QCOMPARE(player.view()->frame().pixelColor(0, 0).red(), i * 20);
        QCOMPARE(player.view()->frame().pixelColor(0, 0).green(), 0);  // no stale tail frame
      }
    };
    PreviewPlayer backwards;  // original: tails at the front
    backwards.add_chunk({}, 7, {}, frames_of(5, 2, 99), 5);
    backwards.add_chunk(frames_of(3, 4, 0), 3, {}, frames_of(1, 2, 99), 1);
    QCOMPARE(backwards.frame_count(), 6);
    backwards.add_chunk(frames_of(0, 3, 0), 0, {}, {}, 0);
    check(backwards, 7);
    PreviewPlayer forwards;  // F1: tails at the back
    forwards.add_chunk(frames_of(0, 2, 0), 0, {}, frames_of(2, 2, 99), 2);
    forwards.add_chunk(frames_of(2, 3, 0), 2, {}, frames_of(5, 2, 99), 5);
    QCOMPARE(forwards.frame_count(), 7);
    forwards.add_chunk(frames_of(5, 4, 0), 5, {}, {}, 9);
    check(forwards, 9);
  }

  // A long video being made is played from its segment files: the player holds the tail and a
  // bounded cache, not every frame, and a frame that left the cache is decoded from its file
  // again. A segment that disappears does not break playback.
  void player_plays_final_frames_from_their_segment_files() {
    app::quiet_ffmpeg_logging();
    QTemporaryDir dir;
    constexpr int kSide = 32, kPerSection = 40, kTail = 5, kSections = 6;
    auto flat = [](int red) {
      QImage f(kSide, kSide, QImage::Format_RGB888);
      f.fill(QColor(red, 40, 200));
      return f;
    };
    auto red_of = [](int i) { return (i * 2) % 250; };  // a different colour per frame
    PreviewPlayer player;
    for (int s = 0; s < kSections; ++s) {  // F1 order: each section extends the video at the back
      const qint64 first = qint64(s) * kPerSection;
      QList<QImage> finals, tail;
      std::vector<std::uint8_t> rgb;
      const QString path = dir.filePath(QString("final_%1.mp4").arg(first));
      app::VideoWriter writer;
      writer.open(path.toStdString(), kSide, kSide, 30, 0, "ultrafast");
      for (int i = 0; i < kPerSection; ++i) {
        finals << flat(red_of(int(first) + i));
        writer.write_frame(finals.back().constBits(), int(finals.back().bytesPerLine()));
      }
      writer.finish();
      for (int i = 0; i < kTail; ++i) tail << flat(255);
      player.add_chunk(finals, first, path, s + 1 < kSections ? tail : QList<QImage>(),
                       first + kPerSection);
      QVERIFY(player.held_frames() <= PreviewPlayer::kCachedFrames + kTail);
    }
    player.pause();
    QCOMPARE(player.frame_count(), kSections * kPerSection);
    QCOMPARE(player.held_frames(), int(PreviewPlayer::kCachedFrames));
    // Frames long out of the cache come back from their files (H.264 at CRF 0: within rounding).
    for (int i : {0, 1, 39, 40, 41, 120, 3, 239}) {
      player.seek(i);
      QVERIFY2(std::abs(player.view()->frame().pixelColor(4, 4).red() - red_of(i)) <= 3,
               qPrintable(QString("frame %1: red %2, expected %3")
                              .arg(i)
                              .arg(player.view()->frame().pixelColor(4, 4).red())
                              .arg(red_of(i))));
      QCOMPARE(player.view()->frame().size(), QSize(kSide, kSide));
    }
    QVERIFY(player.held_frames() <= PreviewPlayer::kCachedFrames);
    // A lost segment: its frames are not shown, the player goes on with the others.
    QVERIFY(QFile::remove(dir.filePath("final_80.mp4")));
    player.seek(100);
    player.seek(200);
    QVERIFY(std::abs(player.view()->frame().pixelColor(4, 4).red() - red_of(200)) <= 3);

    // A finished video from disk (the history's "play"): from its parts, never decoded whole
    // (the part removed above is left out: frames 40-79 come from the second file, 80-119 not).
    QList<QPair<qint64, QString>> files;
    for (int s = 0; s < kSections; ++s)
      if (s != 2)
        files.append(
            {qint64(s) * kPerSection, dir.filePath(QString("final_%1.mp4").arg(s * kPerSection))});
    PreviewPlayer from_disk;
    from_disk.set_video_files(files, kSections * kPerSection);
    from_disk.pause();
    QCOMPARE(from_disk.frame_count(), kSections * kPerSection);
    for (int i : {239, 0, 45, 130, 200}) {
      from_disk.seek(i);
      QVERIFY(std::abs(from_disk.view()->frame().pixelColor(4, 4).red() - red_of(i)) <= 3);
    }
    QVERIFY(from_disk.held_frames() <= PreviewPlayer::kCachedFrames);
  }

  void parameters_start_at_framepack_defaults() {
    ParametersForm form;
    GenerationRequest r;
    r.seed = 1;
    form.fill(r);
    const GenerationRequest d;
    QCOMPARE(r.seed, std::uint64_t(31337));
    QCOMPARE(r.seconds, 5.0);
    QCOMPARE(r.steps, 25);
    QCOMPARE(r.distilled_cfg, 10.0);
    QCOMPARE(r.cfg, 1.0);
    QCOMPARE(r.cfg_rescale, 0.0);
    QCOMPARE(r.latent_window, 9);
    QCOMPARE(r.preserved_memory_bytes, d.preserved_memory_bytes);
    QVERIFY(r.cache == StepCache::kTeaCache);
    QCOMPARE(form.crf(), 16);
    QCOMPARE(r.resolution, d.resolution);
    QVERIFY(form.use_demo_settings_if_default());
    form.fill(r);
    QCOMPARE(r.resolution, 192);
    QVERIFY(!form.use_demo_settings_if_default());  // no longer the defaults: left alone
    // Estimates: FramePack's section count with Python's rounding.
    GenerationRequest e;
    e.seconds = 1;
    e.latent_window = 3;  // 2.5 sections -> 2
    QCOMPARE(app::estimate_job(e, 0, 0).sections, 2);
    e.seconds = 5;
    e.latent_window = 9;  // 4.17 -> 4
    QCOMPARE(app::estimate_job(e, 0, 0).sections, 4);
    QCOMPARE(app::estimate_job(e, 0, 0).frames, 4 * 9 * 4 + 1);
  }

  // The LoRA list: added from the folder menu and from code, strength by slider and number,
  // unticked ones left out, the order after a move is the order of application, and a job's
  // LoRAs come back from its request (history re-use).
  void lora_list_edits_the_requests_loras() {
    QTemporaryDir dir;
    for (const char* name : {"b_detail", "a_style"}) {
      QFile f(dir.filePath(QString(name) + ".safetensors"));
      QVERIFY(f.open(QIODevice::WriteOnly));
    }
    LoraList list(dir.path());
    QSignalSpy changed(&list, &LoraList::changed);
    QCOMPARE(list.summary(), QString("none"));
    auto* from_folder = list.findChild<QToolButton*>();
    QVERIFY(from_folder != nullptr && from_folder->menu() != nullptr);
    Q_EMIT from_folder->menu()->aboutToShow();
    const QList<QAction*> actions = from_folder->menu()->actions();
    QCOMPARE(actions.size(), 2);
    QCOMPARE(actions[0]->text(), QString("a_style"));  // sorted
    actions[0]->trigger();
    list.add(dir.filePath("b_detail.safetensors"), 0.5);
    QCOMPARE(list.count(), 2);
    auto* strength = list.findChild<QDoubleSpinBox*>("lora_strength");
    auto* slider = list.findChild<QSlider*>();
    QVERIFY(strength != nullptr && slider != nullptr);
    QCOMPARE(strength->value(), 0.5);  // the selected (last added) one's
    slider->setValue(-30);
    QCOMPARE(strength->value(), -0.3);
    strength->setValue(3.5);  // beyond the slider's ±2: the number box holds it
    QCOMPARE(slider->value(), slider->maximum());
    std::vector<LoraSpec> l = list.loras();
    QCOMPARE(int(l.size()), 2);
    QVERIFY(l[0].path.find("a_style") != std::string::npos);
    QCOMPARE(l[0].strength, 1.0);
    QCOMPARE(l[1].strength, 3.5);
    // Moved to the top: applied first.
    auto* view = list.findChild<QListWidget*>("lora_list");
    QVERIFY(view->model()->moveRow(QModelIndex(), 1, QModelIndex(), 0));
    QVERIFY(list.loras()[0].path.find("b_detail") != std::string::npos);
    // Unticked: left out, still listed.
    view->item(0)->setCheckState(Qt::Unchecked);
    l = list.loras();
    QCOMPARE(int(l.size()), 1);
    QVERIFY(l[0].path.find("a_style") != std::string::npos);
    QVERIFY(list.summary().startsWith("a_style 1.00"));
    QVERIFY(changed.count() >= 5);

    ParametersForm form;
    GenerationRequest r;
    r.loras = {{"/loras/x.safetensors", 0.7}, {"/loras/y.safetensors", -1.0}};
    form.apply(r);
    GenerationRequest back;
    form.fill(back);
    QCOMPARE(int(back.loras.size()), 2);
    QCOMPARE(back.loras[1].path, std::string("/loras/y.safetensors"));
    QCOMPARE(back.loras[1].strength, -1.0);
    auto* toggle = form.findChild<QToolButton*>("lora_toggle");
    QVERIFY(toggle->text().contains("x 0.70, y -1.00"));
    form.apply(GenerationRequest{});
    form.fill(back);
    QVERIFY(back.loras.empty());
    QCOMPARE(toggle->text(), QString("LoRA: none"));
  }

  // The end frame's picture shows the start picture's crop, and can be cleared again.
  void end_image_takes_the_start_bucket_and_clears() {
    ImageInput end;
    QSignalSpy changed(&end, &ImageInput::image_changed);
    QImage square(300, 300, QImage::Format_RGB888);
    square.fill(Qt::blue);
    QVERIFY(end.set_image(square, "clipboard"));
    end.set_target_bucket(BucketSize{640, 448});
    QVERIFY(end.caption().endsWith("cropped to 640 × 448"));
    end.set_target_bucket(BucketSize{});
    QVERIFY(!end.caption().endsWith("cropped to 640 × 448"));  // its own square bucket again
    end.clear();
    QVERIFY(!end.has_image());
    QCOMPARE(end.frames().count, 0);
    QCOMPARE(changed.count(), 2);
  }

  void queue_is_first_in_first_out() {
    app::JobQueue q;
    QSignalSpy changed(&q, &app::JobQueue::changed);
    GenerationRequest a;
    a.prompt = "first";
    GenerationRequest b;
    b.prompt = "second";
    const int ia = q.enqueue(a, "a.mp4", 16);
    const int ib = q.enqueue(b, "b.mp4", 20);
    QVERIFY(ib > ia);
    QCOMPARE(q.size(), 2);
    QVERIFY(app::describe_job(b).startsWith("second · 5.0 s"));
    QCOMPARE(q.take_next().request.prompt, std::string("first"));
    QVERIFY(q.remove(ib));
    QVERIFY(q.empty());
    QCOMPARE(q.take_next().id, 0);
    QCOMPARE(changed.count(), 4);
  }

  void log_file_rotates() {
    QTemporaryDir dir;
    app::RotatingLog log(dir.filePath("logs/f.log"), 200, 2);
    for (int i = 0; i < 40; ++i) log.append(QString("line %1 ").arg(i).repeated(3));
    QVERIFY(QFile::exists(dir.filePath("logs/f.log")));
    QVERIFY(QFile::exists(dir.filePath("logs/f.log.1")));
    QVERIFY(QFile::exists(dir.filePath("logs/f.log.2")));
    QVERIFY(!QFile::exists(dir.filePath("logs/f.log.3")));
    QVERIFY(QFileInfo(dir.filePath("logs/f.log")).size() < 400);
  }
};

QTEST_MAIN(WidgetsTest)
#include "widgets_test.moc"
