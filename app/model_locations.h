// Where the studio finds models: a folder the user chose, the Hugging Face cache ("hf"), or the
// tiny random model it writes into its data folder on first start so that it works out of the
// box. Also what a chosen set lacks, in words.
#pragma once
#include <QString>
#include <QStringList>

#include "framesmith/model_set.h"

namespace framesmith::app {

// <XDG data>/framesmith/models/tiny (app/first_run.h's models folder).
QString default_tiny_model_dir();
// Writes the tiny model into `dir` unless it is there already (seed 0, as tools/run-demo.sh
// does). Written into a temporary sibling and renamed, so a half-written model never appears.
// Throws Error naming the folder.
void ensure_tiny_model(const QString& dir);
// True for folders whose transformer is tiny (random weights; demo settings suit it).
bool is_tiny_model(const QString& dir);

struct ModelStatus {
  bool usable = false;  // the engine can run with it (every component found)
  QString summary;      // one line: "7 of 8 components; missing: image_encoder"
  QStringList found;    // "transformer (folder)", ...
  QStringList missing;  // folder names: "image_encoder", ...
};
// Never throws: a bad location is a status with the reason in `summary`.
ModelStatus check_model_set(const QString& where, TransformerVariant variant);

}  // namespace framesmith::app
