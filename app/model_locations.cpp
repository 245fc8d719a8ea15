#include "model_locations.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>

#include "first_run.h"
#include "framesmith/engine_cli.h"
#include "framesmith/error.h"

namespace framesmith::app {

QString default_tiny_model_dir() {
  try {
    return QString::fromStdString(user_folders().models) + "/tiny";  // where first_run puts it
  } catch (const std::exception&) {
    return QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation) + "/tiny-model";
  }
}

void ensure_tiny_model(const QString& dir) {
  if (QFileInfo::exists(dir + "/transformer/config.json")) return;
  const QString tmp = dir + ".partial-" + QString::number(QCoreApplication::applicationPid());
  QDir(tmp).removeRecursively();
  make_tiny_model(tmp.toStdString(), 0);
  QDir(dir).removeRecursively();  // an earlier, incomplete attempt
  if (!QDir().rename(tmp, dir)) {
    QDir(tmp).removeRecursively();
    throw Error(dir.toStdString() + ": cannot move the tiny model into place");
  }
}

bool is_tiny_model(const QString& dir) {
  QFile f(dir + "/transformer/config.json");
  if (!f.open(QIODevice::ReadOnly)) return false;
  const QJsonObject c = QJsonDocument::fromJson(f.readAll()).object();
  // The real transformer has 24 heads of 128; the tiny one a few of 16.
  const int width = c.value("num_attention_heads").toInt() * c.value("attention_head_dim").toInt();
  return width > 0 && width <= 256;
}

ModelStatus check_model_set(const QString& where, TransformerVariant variant) {
  ModelStatus s;
  if (where.trimmed().isEmpty()) {
    s.summary = "no model chosen";
    return s;
  }
  ModelSet set;
  try {
    set = locate_model_set(where.trimmed().toStdString(), variant);
  } catch (const std::exception& e) {
    s.summary = QString::fromStdString(e.what());
    return s;
  }
  for (const ComponentPath& c : set.found)
    s.found << QString("%1 (%2)").arg(folder_name(c.component), QString::fromStdString(c.origin));
  for (Component c : set.missing) s.missing << folder_name(c);
  const int total = int(all_components().size());
  s.usable = set.missing.empty();
  s.summary = s.usable ? QString("all %1 components found").arg(total)
                       : QString("%1 of %2 components; missing: %3")
                             .arg(set.found.size())
                             .arg(total)
                             .arg(s.missing.join(", "));
  return s;
}

}  // namespace framesmith::app
