// Live device-memory graph: allocated, reserved and device-used memory against time; total,
// budget and "total - preserved" lines; a background band per phase (text, image, sampling,
// decode, ...); a marker with a tooltip (request, free, action, outcome) for every OOM recovery
// and allocator event. Follows the newest data (addData, removeBefore, queued replots at most ten
// times a second, only while visible); pauses for panning and zooming as soon as the user drags
// or scrolls, "Live" resumes. Exports PNG and CSV.
#pragma once
#include <QStringList>
#include <QTimer>
#include <QVector>
#include <QWidget>
#include <deque>

#include "engine_metatypes.h"

class QCustomPlot;
class QCPGraph;
class QCPItemRect;
class QCPItemText;
class QToolButton;

namespace framesmith::ui {

// "section 2 step 7" -> "sampling", "decode chunk 3" -> "decode", "vae encode" -> "encode", ...
QString phase_kind(const std::string& phase);

class MemoryGraph : public QWidget {
  Q_OBJECT
 public:
  explicit MemoryGraph(QWidget* parent = nullptr);

  // Forgets every sample, band and marker (a new job starts).
  void clear();
  // The job's preserved memory (FramePack's "GPU inference preserved memory"): drawn as a line
  // at total - preserved once the device's total is known. 0: no line.
  void set_preserved_bytes(double bytes);

  int sample_count() const { return int(samples_.size()); }
  int marker_count() const { return int(markers_.size()); }
  int band_count() const { return int(bands_.size()); }
  QString marker_tooltip(int i) const { return markers_.at(std::size_t(i)).tooltip; }
  QString band_label(int i) const { return bands_.at(std::size_t(i)).kind; }
  bool following() const { return following_; }
  QCustomPlot* plot() const { return plot_; }

  // Replots (queued) if anything changed and the graph is visible; the timer calls this.
  void flush();
  bool export_png(const QString& path);
  bool export_csv(const QString& path) const;

 public Q_SLOTS:
  void add_event(const framesmith::Event& e);
  void set_following(bool follow);

 protected:
  void showEvent(QShowEvent* e) override;
  void hideEvent(QHideEvent* e) override;

 private:
  struct Sample {
    double t_s;
    QString phase;
    double allocated, reserved, device_used, total, budget;
  };
  struct Marker {
    double t_s;
    QString kind;  // "oom_recovered", "allocator"
    QString phase;
    QString tooltip;
    QString csv;  // requested,free,action,outcome
  };
  struct Band {
    QString kind;
    double t0, t1;
    QCPItemRect* rect;
    QCPItemText* label;
  };
  void add_sample(const Event& e);
  void add_marker(const Event& e);
  void note_phase(const std::string& phase, double t_s);
  void drop_old(double t_now);
  void update_ranges();
  void show_tooltip(QMouseEvent* ev);
  void export_dialog(bool csv);

  QCustomPlot* plot_ = nullptr;
  QToolButton* live_button_ = nullptr;
  QCPGraph* allocated_ = nullptr;
  QCPGraph* reserved_ = nullptr;
  QCPGraph* used_ = nullptr;
  QCPGraph* total_ = nullptr;
  QCPGraph* budget_ = nullptr;
  QCPGraph* preserve_ = nullptr;
  QCPGraph* oom_points_ = nullptr;
  QCPGraph* allocator_points_ = nullptr;
  QCPItemText* empty_note_ = nullptr;  // shown while there are no samples
  QTimer replot_timer_;
  bool dirty_ = false;
  bool following_ = true;
  double preserved_bytes_ = 0;
  double max_bytes_ = 0;
  double t_end_ = 0;
  std::deque<Sample> samples_;
  std::deque<Marker> markers_;
  std::deque<Band> bands_;
};

}  // namespace framesmith::ui
