// The job's event log beside the memory graph: one row per engine event (memory samples excepted:
// those are the graph) and per studio message, filterable by kind and text, copyable as text.
#pragma once
#include <QWidget>

#include "engine_metatypes.h"

class QComboBox;
class QLineEdit;
class QStandardItemModel;
class QTableView;

namespace framesmith::ui {

class EventFilterProxy;

class EventLog : public QWidget {
  Q_OBJECT
 public:
  enum class Filter { kAll = 1, kAllButProgress, kMemory, kOom, kProgress, kResults, kStudio };

  explicit EventLog(QWidget* parent = nullptr);

  void clear();
  int row_count() const;          // rows kept
  int visible_row_count() const;  // rows the filter lets through
  void set_filter(Filter f);
  void set_text_filter(const QString& text);
  // The visible rows (or only the selected ones) as tab-separated lines, as Copy puts them on
  // the clipboard.
  QString visible_text(bool selected_only) const;

 public Q_SLOTS:
  void add_event(const framesmith::Event& e);
  // A line from the studio itself ("job 2 started", "saved …"); `level` is "info" or "error".
  void add_message(const QString& text, const QString& level = "info");
  void copy_to_clipboard();

 private:
  void append_row(double t_s, const QString& type, const QString& phase, const QString& details,
                  bool highlight);

  QStandardItemModel* model_ = nullptr;
  EventFilterProxy* proxy_ = nullptr;
  QTableView* view_ = nullptr;
  QComboBox* filter_box_ = nullptr;
  QLineEdit* text_filter_ = nullptr;
  double last_t_ = 0;
};

// "requested=2.0 GiB free=512.0 MiB action=chunk 16→4 outcome=ok": an event's fields in words.
QString event_details(const framesmith::Event& e);

}  // namespace framesmith::ui
