#include "memory_graph.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QSaveFile>
#include <QTextStream>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "framesmith/units.h"

namespace framesmith::ui {
namespace {

constexpr double kFollowWindowS = 300.0;  // seconds shown while following live data
constexpr double kRetainS = 3600.0;       // older samples are dropped (bounded memory)
constexpr double kMiB = 1024.0 * 1024.0;

// Byte axis: ticks at powers of two, labelled "512 MiB", "1.5 GiB".
class BytesTicker : public QCPAxisTicker {
 protected:
  double getTickStep(const QCPRange& range) override {
    const double target = std::max(range.size() / std::max(tickCount(), 1), 1.0);
    return std::pow(2.0, std::ceil(std::log2(target)));
  }
  int getSubTickCount(double) override { return 1; }
  QString getTickLabel(double tick, const QLocale&, QChar, int) override {
    if (std::abs(tick) < 0.5) return "0";
    return QString::fromStdString(format_size(tick));
  }
};

QColor band_color(const QString& kind) {
  if (kind == "text") return QColor(255, 245, 204);
  if (kind == "image") return QColor(229, 245, 224);
  if (kind == "encode") return QColor(222, 235, 247);
  if (kind == "loading") return QColor(238, 238, 238);
  if (kind == "sampling") return QColor(239, 237, 245);
  if (kind == "decode") return QColor(254, 230, 206);
  return QColor(246, 246, 246);
}

bool is_size_field(const std::string& k) {
  return k == "requested" || k == "free" || k == "allocated" || k == "reserved" ||
         k == "device_used" || k == "total" || k == "budget" || k == "peak" || k == "bytes" ||
         k.find("bytes") != std::string::npos;
}

QString value_text(const std::string& key, double v) {
  if (is_size_field(key) && v >= 0) return QString::fromStdString(format_size(v));
  return QString::number(v, 'g', 6);
}

QString csv_quote(QString s) {
  if (s.contains(',') || s.contains('"') || s.contains('\n'))
    s = '"' + s.replace('"', "\"\"") + '"';
  return s;
}

}  // namespace

QString phase_kind(const std::string& phase) {
  const QString p = QString::fromStdString(phase).toLower();
  if (p.startsWith("section") || p.startsWith("sampling") || p.contains("step")) return "sampling";
  if (p.contains("decode")) return "decode";
  if (p.contains("encode") && !p.contains("image encoder")) return "encode";
  if (p.startsWith("text")) return "text";
  if (p.startsWith("image")) return "image";
  if (p.startsWith("load")) return "loading";
  return p.section(' ', 0, 0);
}

MemoryGraph::MemoryGraph(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(2);

  auto* bar = new QHBoxLayout;
  auto* title = new QLabel("<b>Device memory</b>");
  bar->addWidget(title);
  bar->addStretch(1);
  live_button_ = new QToolButton;
  live_button_->setText("Live");
  live_button_->setCheckable(true);
  live_button_->setChecked(true);
  live_button_->setToolTip("Follow the newest samples (drag or scroll the graph to pause)");
  connect(live_button_, &QToolButton::toggled, this, &MemoryGraph::set_following);
  auto* png = new QToolButton;
  png->setText("PNG…");
  png->setToolTip("Save the graph as a PNG image");
  connect(png, &QToolButton::clicked, this, [this] { export_dialog(false); });
  auto* csv = new QToolButton;
  csv->setText("CSV…");
  csv->setToolTip("Save every sample and marker as CSV");
  connect(csv, &QToolButton::clicked, this, [this] { export_dialog(true); });
  bar->addWidget(live_button_);
  bar->addWidget(png);
  bar->addWidget(csv);
  layout->addLayout(bar);

  plot_ = new QCustomPlot(this);
  plot_->setMinimumHeight(150);
  plot_->setMouseTracking(true);
  layout->addWidget(plot_, 1);
  QFont small = font();
  small.setPointSizeF(std::max(7.0, small.pointSizeF() - 1));
  plot_->xAxis->setLabel("time (s)");
  plot_->xAxis->setTickLabelFont(small);
  plot_->yAxis->setTickLabelFont(small);
  plot_->xAxis->setLabelFont(small);
  plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new BytesTicker));
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->axisRect()->setRangeDrag(Qt::Horizontal | Qt::Vertical);
  plot_->axisRect()->setRangeZoom(Qt::Horizontal);

  // Legend in its own row above the axes, so it never hides data.
  plot_->plotLayout()->insertRow(0);
  plot_->plotLayout()->addElement(0, 0, plot_->legend);
  plot_->plotLayout()->setRowStretchFactor(0, 0.001);
  plot_->legend->setVisible(true);
  plot_->legend->setFont(small);
  plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot_->legend->setWrap(4);
  plot_->legend->setBorderPen(Qt::NoPen);
  plot_->legend->setRowSpacing(0);
  plot_->legend->setColumnSpacing(8);
  plot_->legend->setMargins(QMargins(2, 0, 2, 0));

  // Phase bands lie below the grid.
  plot_->addLayer("bands", plot_->layer("grid"), QCustomPlot::limBelow);

  auto add = [&](const QString& name, QColor color, Qt::PenStyle style, double width) {
    QCPGraph* g = plot_->addGraph();
    g->setName(name);
    g->setPen(QPen(color, width, style));
    g->removeFromLegend();  // listed once it has data
    return g;
  };
  used_ = add("device used", QColor(115, 115, 115), Qt::SolidLine, 1.2);
  reserved_ = add("reserved", QColor(107, 174, 214), Qt::SolidLine, 1.6);
  reserved_->setBrush(QColor(107, 174, 214, 40));
  allocated_ = add("allocated", QColor(8, 81, 156), Qt::SolidLine, 1.8);
  total_ = add("total", QColor(37, 37, 37), Qt::DashLine, 1.2);
  budget_ = add("budget", QColor(203, 24, 29), Qt::DashLine, 1.4);
  preserve_ = add("total − preserved", QColor(230, 85, 13), Qt::DotLine, 1.4);
  oom_points_ = add("OOM recovered", QColor(203, 24, 29), Qt::SolidLine, 1.2);
  oom_points_->setLineStyle(QCPGraph::lsNone);
  oom_points_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssTriangleInverted,
                                               QColor(165, 15, 21), QColor(251, 106, 74), 12));
  allocator_points_ = add("allocator", QColor(49, 130, 189), Qt::SolidLine, 1.2);
  allocator_points_->setLineStyle(QCPGraph::lsNone);
  allocator_points_->setScatterStyle(
      QCPScatterStyle(QCPScatterStyle::ssDiamond, QColor(8, 81, 156), QColor(158, 202, 225), 10));

  empty_note_ = new QCPItemText(plot_);
  empty_note_->setClipToAxisRect(true);
  empty_note_->position->setType(QCPItemPosition::ptAxisRectRatio);
  empty_note_->position->setCoords(0.5, 0.45);
  empty_note_->setColor(QColor(110, 110, 110));
  empty_note_->setText(
      "No device memory samples.\nOn the cpu device, set a Budget to simulate a device of that "
      "size.");

  connect(plot_, &QCustomPlot::mouseMove, this, &MemoryGraph::show_tooltip);
  // Any pan or zoom by the user pauses following, so the view stays where it was put.
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent*) { set_following(false); });
  connect(plot_, &QCustomPlot::mouseWheel, this, [this](QWheelEvent*) { set_following(false); });

  replot_timer_.setInterval(100);
  connect(&replot_timer_, &QTimer::timeout, this, &MemoryGraph::flush);
  clear();
}

void MemoryGraph::clear() {
  for (int i = 0; i < plot_->graphCount(); ++i) plot_->graph(i)->data()->clear();
  for (Band& b : bands_) {
    plot_->removeItem(b.rect);
    plot_->removeItem(b.label);
  }
  bands_.clear();
  samples_.clear();
  markers_.clear();
  max_bytes_ = 0;
  t_end_ = 0;
  dirty_ = true;
  set_following(true);
  flush();
}

void MemoryGraph::set_preserved_bytes(double bytes) {
  preserved_bytes_ = std::max(bytes, 0.0);
}

void MemoryGraph::add_event(const Event& e) {
  t_end_ = std::max(t_end_, e.t_s);
  // Plans name the phases to come, results the job as a whole: neither starts a band.
  if (!e.phase.empty() && e.type != EventType::kPlan && e.type != EventType::kFinished &&
      e.type != EventType::kError)
    note_phase(e.phase, e.t_s);
  if (e.type == EventType::kMemory) add_sample(e);
  if (e.type == EventType::kOomRecovered || e.type == EventType::kAllocator) add_marker(e);
  if (!bands_.empty()) bands_.back().t1 = t_end_;
  dirty_ = true;
}

void MemoryGraph::add_sample(const Event& e) {
  Sample s{e.t_s,
           QString::fromStdString(e.phase),
           e.number("allocated"),
           e.number("reserved", e.number("allocated")),
           e.number("device_used", -1),
           e.number("total", -1),
           e.number("budget", -1)};
  samples_.push_back(s);
  allocated_->addData(s.t_s, s.allocated);
  reserved_->addData(s.t_s, s.reserved);
  max_bytes_ = std::max({max_bytes_, s.allocated, s.reserved});
  if (s.device_used >= 0) {
    used_->addData(s.t_s, s.device_used);
    max_bytes_ = std::max(max_bytes_, s.device_used);
  }
  if (s.total > 0) {
    total_->addData(s.t_s, s.total);
    max_bytes_ = std::max(max_bytes_, s.total);
    if (preserved_bytes_ > 0 && s.total - preserved_bytes_ > 0)
      preserve_->addData(s.t_s, s.total - preserved_bytes_);
  }
  if (s.budget > 0 && s.budget != s.total) {
    budget_->addData(s.t_s, s.budget);
    max_bytes_ = std::max(max_bytes_, s.budget);
  }
  drop_old(s.t_s);
}

void MemoryGraph::drop_old(double t_now) {
  if (samples_.empty() || samples_.front().t_s > t_now - kRetainS * 1.1) return;
  const double cut = t_now - kRetainS;
  for (int i = 0; i < plot_->graphCount(); ++i) plot_->graph(i)->data()->removeBefore(cut);
  while (!samples_.empty() && samples_.front().t_s < cut) samples_.pop_front();
  while (!markers_.empty() && markers_.front().t_s < cut) markers_.pop_front();
  while (bands_.size() > 1 && bands_.front().t1 < cut) {
    plot_->removeItem(bands_.front().rect);
    plot_->removeItem(bands_.front().label);
    bands_.pop_front();
  }
}

void MemoryGraph::add_marker(const Event& e) {
  double y = 0;
  if (!allocated_->data()->isEmpty()) y = (allocated_->data()->constEnd() - 1)->value;
  const bool oom = e.type == EventType::kOomRecovered;
  (oom ? oom_points_ : allocator_points_)->addData(e.t_s, y);

  QString tip = QString("<b>%1</b> at %2 s<br>phase: %3")
                    .arg(oom ? "Out of memory, recovered" : "Allocator")
                    .arg(e.t_s, 0, 'f', 2)
                    .arg(QString::fromStdString(e.phase).toHtmlEscaped());
  // The fields people look for first, then whatever else the event carries.
  const char* first[] = {"requested", "free"};
  for (const char* k : first)
    if (e.numbers.count(k)) tip += QString("<br>%1: %2").arg(k, value_text(k, e.number(k)));
  for (const char* k : {"action", "outcome"})
    if (e.texts.count(k))
      tip += QString("<br>%1: <b>%2</b>").arg(k, QString::fromStdString(e.text(k)).toHtmlEscaped());
  for (const auto& [k, v] : e.numbers)
    if (k != "requested" && k != "free")
      tip += QString("<br>%1: %2").arg(k.c_str(), value_text(k, v));
  for (const auto& [k, v] : e.texts)
    if (k != "action" && k != "outcome")
      tip += QString("<br>%1: %2").arg(k.c_str(), QString::fromStdString(v).toHtmlEscaped());

  const QString csv =
      QString("%1,%2,%3,%4")
          .arg(e.numbers.count("requested") ? QString::number(qint64(e.number("requested"))) : "")
          .arg(e.numbers.count("free") ? QString::number(qint64(e.number("free"))) : "")
          .arg(csv_quote(QString::fromStdString(e.text("action"))))
          .arg(csv_quote(QString::fromStdString(e.text("outcome"))));
  markers_.push_back(
      {e.t_s, QString::fromUtf8(to_string(e.type)), QString::fromStdString(e.phase), tip, csv});
}

void MemoryGraph::note_phase(const std::string& phase, double t_s) {
  const QString kind = phase_kind(phase);
  if (kind.isEmpty() || (!bands_.empty() && bands_.back().kind == kind)) return;
  if (!bands_.empty()) bands_.back().t1 = t_s;
  auto* rect = new QCPItemRect(plot_);
  rect->setLayer("bands");
  rect->setClipToAxisRect(true);
  rect->setPen(Qt::NoPen);
  rect->setBrush(band_color(kind));
  for (QCPItemPosition* p : {rect->topLeft, rect->bottomRight}) {
    p->setTypeX(QCPItemPosition::ptPlotCoords);
    p->setTypeY(QCPItemPosition::ptAxisRectRatio);
  }
  auto* label = new QCPItemText(plot_);
  label->setLayer("bands");
  label->setClipToAxisRect(true);
  label->setText(kind);
  label->setColor(QColor(90, 90, 90));
  QFont f = font();
  f.setPointSizeF(std::max(7.0, f.pointSizeF() - 2));
  label->setFont(f);
  label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
  label->position->setTypeX(QCPItemPosition::ptPlotCoords);
  label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
  label->setPadding(QMargins(3, 2, 3, 2));
  bands_.push_back({kind, t_s, t_s, rect, label});
}

void MemoryGraph::update_ranges() {
  empty_note_->setVisible(samples_.empty() && t_end_ > 0);  // a job runs, but nothing is sampled
  for (Band& b : bands_) {
    b.rect->topLeft->setCoords(b.t0, 0);
    b.rect->bottomRight->setCoords(b.t1, 1);
    b.label->position->setCoords(b.t0, 0);
  }
  // The legend lists what is drawn; allocated and reserved always (an empty legend would
  // shrink the layout column it shares with the axes).
  for (int i = 0; i < plot_->graphCount(); ++i) {
    QCPGraph* g = plot_->graph(i);
    if (g->data()->isEmpty() && g != allocated_ && g != reserved_)
      g->removeFromLegend();
    else
      g->addToLegend();
  }
  if (!following_) return;
  const double t1 = std::max(t_end_, 10.0);
  plot_->xAxis->setRange(std::max(0.0, t1 - kFollowWindowS), t1 * 1.02);
  const double top = max_bytes_ > 0 ? max_bytes_ * 1.08 : 64 * kMiB;
  plot_->yAxis->setRange(0, top);
}

void MemoryGraph::flush() {
  if (!dirty_ || !isVisible()) return;  // hidden: draw nothing, catch up when shown
  dirty_ = false;
  update_ranges();
  // Labels of bands too narrow to hold them would only overlap their neighbours.
  for (Band& b : bands_) {
    const double px = plot_->xAxis->coordToPixel(b.t1) - plot_->xAxis->coordToPixel(b.t0);
    b.label->setVisible(px > 8 + QFontMetrics(b.label->font()).horizontalAdvance(b.kind));
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void MemoryGraph::set_following(bool follow) {
  following_ = follow;
  if (live_button_->isChecked() != follow) {
    const QSignalBlocker block(live_button_);
    live_button_->setChecked(follow);
  }
  dirty_ = true;
  if (follow) flush();
}

void MemoryGraph::show_tooltip(QMouseEvent* ev) {
  const QPointF pos = ev->position();
  for (const Marker& m : markers_) {
    const double px = plot_->xAxis->coordToPixel(m.t_s);
    if (std::abs(px - pos.x()) > 8) continue;
    QToolTip::showText(ev->globalPosition().toPoint(), m.tooltip, plot_);
    return;
  }
  QToolTip::hideText();
}

void MemoryGraph::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  dirty_ = true;
  replot_timer_.start();  // replot only while visible (as OBS's stats view polls)
}

void MemoryGraph::hideEvent(QHideEvent* e) {
  replot_timer_.stop();
  QWidget::hideEvent(e);
}

bool MemoryGraph::export_png(const QString& path) {
  dirty_ = true;
  update_ranges();
  return plot_->savePng(path, 0, 0, 1.0);
}

bool MemoryGraph::export_csv(const QString& path) const {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
  QTextStream out(&f);
  out << "t_s,type,phase,allocated,reserved,device_used,total,budget,requested,free,action,"
         "outcome\n";
  auto num = [](double v) { return v < 0 ? QString() : QString::number(qint64(v)); };
  auto s = samples_.begin();
  auto m = markers_.begin();
  // Samples and markers merged in time order.
  while (s != samples_.end() || m != markers_.end()) {
    if (m == markers_.end() || (s != samples_.end() && s->t_s <= m->t_s)) {
      out << QString::number(s->t_s, 'f', 3) << ",memory," << csv_quote(s->phase) << ","
          << num(s->allocated) << "," << num(s->reserved) << "," << num(s->device_used) << ","
          << num(s->total) << "," << num(s->budget) << ",,,,\n";
      ++s;
    } else {
      out << QString::number(m->t_s, 'f', 3) << "," << m->kind << "," << csv_quote(m->phase)
          << ",,,,,," << m->csv << "\n";
      ++m;
    }
  }
  return f.commit();
}

void MemoryGraph::export_dialog(bool csv) {
  const QString path = QFileDialog::getSaveFileName(
      this, csv ? "Save memory samples" : "Save memory graph", csv ? "memory.csv" : "memory.png",
      csv ? "CSV (*.csv)" : "PNG image (*.png)");
  if (path.isEmpty()) return;
  if (!(csv ? export_csv(path) : export_png(path)))
    QToolTip::showText(mapToGlobal(rect().center()), "could not write " + path, this);
}

}  // namespace framesmith::ui
