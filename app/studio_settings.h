// What the studio remembers between runs (QSettings): the model, the output folder, the last
// image and every parameter (stored as the same JSON the sidecars hold).
#pragma once
#include <QSettings>
#include <QString>

#include "framesmith/pipeline.h"

namespace framesmith::app {

struct StudioSettings {
  bool stored = false;  // false on the very first start (nothing saved yet)
  QString model_dir;
  QString output_dir;
  QString image_path;
  GenerationRequest params;  // no pixels; FramePack's defaults where nothing is stored
  int crf = 16;
  bool randomize_seed = false;
};

// Reads what save_settings wrote; values that no longer parse fall back to the defaults.
StudioSettings load_settings(QSettings& s);
void save_settings(QSettings& s, const StudioSettings& st);

}  // namespace framesmith::app
