#include "event_log.h"

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QKeySequence>
#include <QLabel>
#include <QLineEdit>
#include <QScrollBar>
#include <QShortcut>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

#include "framesmith/units.h"

namespace framesmith::ui {
namespace {

constexpr int kMaxRows = 20000;  // the oldest rows go first (the log file keeps everything)
constexpr int kTypeRole = Qt::UserRole + 1;

bool is_size(const std::string& k) {
  return k == "requested" || k == "free" || k == "allocated" || k == "reserved" ||
         k == "device_used" || k == "total" || k == "budget" || k == "peak" ||
         k.find("bytes") != std::string::npos;
}

}  // namespace

QString event_details(const Event& e) {
  QStringList parts;
  for (const auto& [k, v] : e.texts)
    parts << QString("%1=%2").arg(QString::fromStdString(k), QString::fromStdString(v));
  for (const auto& [k, v] : e.numbers) {
    const QString value =
        is_size(k) ? QString::fromStdString(format_size(v)) : QString::number(v, 'g', 6);
    parts << QString("%1=%2").arg(QString::fromStdString(k), value);
  }
  return parts.join("  ");
}

// Filters by event kind and by a case-insensitive text over every column.
class EventFilterProxy : public QSortFilterProxyModel {
 public:
  using QSortFilterProxyModel::QSortFilterProxyModel;
  void set_kind(EventLog::Filter f) {
    kind_ = f;
    invalidateFilter();
  }
  void set_text(const QString& t) {
    text_ = t.trimmed();
    invalidateFilter();
  }

 protected:
  bool filterAcceptsRow(int row, const QModelIndex& parent) const override {
    const QString type = sourceModel()->index(row, 1, parent).data(kTypeRole).toString();
    if (!kind_accepts(type)) return false;
    if (text_.isEmpty()) return true;
    for (int c = 0; c < sourceModel()->columnCount(); ++c)
      if (sourceModel()
              ->index(row, c, parent)
              .data()
              .toString()
              .contains(text_, Qt::CaseInsensitive))
        return true;
    return false;
  }

 private:
  bool kind_accepts(const QString& t) const {
    switch (kind_) {
      case EventLog::Filter::kAll:
        return true;
      case EventLog::Filter::kAllButProgress:
        return t != "progress";
      case EventLog::Filter::kMemory:
        return t == "plan" || t == "oom_recovered" || t == "allocator" || t == "residency";
      case EventLog::Filter::kOom:
        return t == "oom_recovered";
      case EventLog::Filter::kProgress:
        return t == "progress";
      case EventLog::Filter::kResults:
        return t == "section_done" || t == "chunk_decoded" || t == "finished" || t == "error";
      case EventLog::Filter::kStudio:
        return t == "studio" || t == "studio error";
    }
    return true;
  }
  EventLog::Filter kind_ = EventLog::Filter::kAllButProgress;
  QString text_;
};

EventLog::EventLog(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(2);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel("<b>Events</b>"));
  filter_box_ = new QComboBox;
  filter_box_->addItem("All but progress", int(Filter::kAllButProgress));
  filter_box_->addItem("All", int(Filter::kAll));
  filter_box_->addItem("Memory decisions", int(Filter::kMemory));
  filter_box_->addItem("OOM recoveries", int(Filter::kOom));
  filter_box_->addItem("Progress", int(Filter::kProgress));
  filter_box_->addItem("Results and errors", int(Filter::kResults));
  filter_box_->addItem("Studio", int(Filter::kStudio));
  filter_box_->setToolTip("Show only events of one kind (progress steps are in the status line)");
  text_filter_ = new QLineEdit;
  text_filter_->setPlaceholderText("filter…");
  text_filter_->setClearButtonEnabled(true);
  auto* copy = new QToolButton;
  copy->setText("Copy");
  copy->setToolTip("Copy the selected rows (or all shown rows) as text");
  auto* clear_button = new QToolButton;
  clear_button->setText("Clear");
  bar->addWidget(filter_box_);
  bar->addWidget(text_filter_, 1);
  bar->addWidget(copy);
  bar->addWidget(clear_button);
  layout->addLayout(bar);

  model_ = new QStandardItemModel(0, 4, this);
  model_->setHorizontalHeaderLabels({"t (s)", "type", "phase", "details"});
  proxy_ = new EventFilterProxy(this);
  proxy_->setSourceModel(model_);
  view_ = new QTableView;
  view_->setModel(proxy_);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  view_->setWordWrap(false);
  view_->setAlternatingRowColors(true);
  view_->verticalHeader()->hide();
  view_->verticalHeader()->setDefaultSectionSize(view_->fontMetrics().height() + 4);
  view_->horizontalHeader()->setStretchLastSection(true);
  view_->horizontalHeader()->setHighlightSections(false);
  const int digit = view_->fontMetrics().horizontalAdvance("0");
  view_->setColumnWidth(0, digit * 7);
  view_->setColumnWidth(1, digit * 13);
  view_->setColumnWidth(2, digit * 14);
  layout->addWidget(view_, 1);

  connect(filter_box_, &QComboBox::currentIndexChanged, this,
          [this](int) { set_filter(Filter(filter_box_->currentData().toInt())); });
  connect(text_filter_, &QLineEdit::textChanged, this, &EventLog::set_text_filter);
  connect(copy, &QToolButton::clicked, this, &EventLog::copy_to_clipboard);
  connect(clear_button, &QToolButton::clicked, this, &EventLog::clear);
  auto* copy_key = new QShortcut(QKeySequence::Copy, view_);
  copy_key->setContext(Qt::WidgetShortcut);
  connect(copy_key, &QShortcut::activated, this, &EventLog::copy_to_clipboard);
}

void EventLog::clear() {
  model_->removeRows(0, model_->rowCount());
  last_t_ = 0;
}

int EventLog::row_count() const {
  return model_->rowCount();
}

int EventLog::visible_row_count() const {
  return proxy_->rowCount();
}

void EventLog::set_filter(Filter f) {
  proxy_->set_kind(f);
  const int i = filter_box_->findData(int(f));
  if (i >= 0 && i != filter_box_->currentIndex()) filter_box_->setCurrentIndex(i);
}

void EventLog::set_text_filter(const QString& text) {
  proxy_->set_text(text);
  if (text_filter_->text() != text) text_filter_->setText(text);
}

void EventLog::add_event(const Event& e) {
  if (e.type == EventType::kMemory || e.type == EventType::kPreview) return;  // the graph's
  const bool alert = e.type == EventType::kOomRecovered || e.type == EventType::kError;
  append_row(e.t_s, QString::fromUtf8(to_string(e.type)), QString::fromStdString(e.phase),
             event_details(e), alert);
}

void EventLog::add_message(const QString& text, const QString& level) {
  append_row(last_t_, level == "error" ? "studio error" : "studio", QString(), text,
             level == "error");
}

void EventLog::append_row(double t_s, const QString& type, const QString& phase,
                          const QString& details, bool highlight) {
  last_t_ = t_s;
  QScrollBar* bar = view_->verticalScrollBar();
  const bool at_end = bar->value() >= bar->maximum() - 2;
  if (model_->rowCount() >= kMaxRows) model_->removeRows(0, kMaxRows / 20);
  QList<QStandardItem*> row;
  row << new QStandardItem(QString::number(t_s, 'f', 2)) << new QStandardItem(type)
      << new QStandardItem(phase) << new QStandardItem(details);
  row[1]->setData(type, kTypeRole);
  row[3]->setToolTip(details);
  if (highlight)
    for (QStandardItem* item : row) item->setForeground(QColor(180, 20, 20));
  model_->appendRow(row);
  if (at_end) view_->scrollToBottom();
}

QString EventLog::visible_text(bool selected_only) const {
  QStringList lines;
  const auto selected = view_->selectionModel()->selectedRows();
  auto line = [&](int row) {
    QStringList cells;
    for (int c = 0; c < proxy_->columnCount(); ++c)
      cells << proxy_->index(row, c).data().toString();
    return cells.join('\t');
  };
  if (selected_only && !selected.isEmpty()) {
    QList<int> rows;
    for (const QModelIndex& i : selected) rows << i.row();
    std::sort(rows.begin(), rows.end());
    for (int r : rows) lines << line(r);
  } else {
    for (int r = 0; r < proxy_->rowCount(); ++r) lines << line(r);
  }
  return lines.join('\n');
}

void EventLog::copy_to_clipboard() {
  QApplication::clipboard()->setText(visible_text(true));
}

}  // namespace framesmith::ui
