#include "first_run.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>
#include <QString>

#include "framesmith/error.h"
#include "model_locations.h"

namespace framesmith::app {
namespace {

std::string location(QStandardPaths::StandardLocation where, const char* what) {
  const QString dir = QStandardPaths::writableLocation(where);
  if (dir.isEmpty()) throw Error(std::string("no writable ") + what + " location (is HOME set?)");
  return QDir::cleanPath(dir).toStdString();
}

void make_folder(const std::string& dir) {
  if (!QDir().mkpath(QString::fromStdString(dir))) throw Error("cannot create the folder " + dir);
}

bool exists(const std::string& path) {
  return QFileInfo::exists(QString::fromStdString(path));
}

// A README next to the models, for the user who opens the folder in a file manager.
void write_models_readme(const std::string& models_dir) {
  QFile f(QString::fromStdString(models_dir + "/README.txt"));
  if (f.exists()) return;
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text))
    throw Error("cannot write " + models_dir + "/README.txt");
  const std::string text = real_weights_help(models_dir) + "\n";
  f.write(text.data(), qint64(text.size()));
}

}  // namespace

UserFolders user_folders() {
  UserFolders f;
  f.config = location(QStandardPaths::GenericConfigLocation, "config") + "/framesmith";
  f.data = location(QStandardPaths::GenericDataLocation, "data") + "/framesmith";
  f.models = f.data + "/models";
  f.cache = location(QStandardPaths::GenericCacheLocation, "cache") + "/framesmith";
  f.videos = location(QStandardPaths::MoviesLocation, "videos") + "/Framesmith";
  return f;
}

std::string real_weights_help(const std::string& models_dir) {
  return "The tiny model has random weights: its videos are noise. It is there so that everything "
         "can be tried at once.\n"
         "For real videos Framesmith needs the FramePack weights (about 40 GB, safetensors):\n"
         "  transformer: lllyasviel/FramePackI2V_HY (or lllyasviel/FramePack_F1_I2V_HY_20250503)\n"
         "  vae, text_encoder, text_encoder_2, tokenizer, tokenizer_2: "
         "hunyuanvideo-community/HunyuanVideo\n"
         "  image_encoder, feature_extractor: lllyasviel/flux_redux_bfl\n"
         "If FramePack already downloaded them, choose \"hf\" as the model: Framesmith reads the "
         "Hugging Face cache. Otherwise download them (for example with huggingface-cli download) "
         "into a folder laid out like " +
         models_dir +
         "/tiny (transformer/, vae/, text_encoder/, ...) and choose that folder. "
         "`framesmith-cli inspect-model FOLDER` says what is missing.";
}

bool ensure_user_folders(const UserFolders& folders) {
  const bool first_start = !exists(folders.data);
  for (const auto* dir :
       {&folders.config, &folders.data, &folders.models, &folders.cache, &folders.videos})
    make_folder(*dir);
  write_models_readme(folders.models);
  return first_start;
}

FirstRun prepare_first_run(const std::string& configured_model) {
  FirstRun r;
  r.folders = user_folders();
  r.first_start = ensure_user_folders(r.folders);
  if (!configured_model.empty()) {
    r.model_dir = configured_model;
    return r;
  }
  r.model_dir = r.folders.models + "/tiny";
  const QString dir = QString::fromStdString(r.model_dir);
  r.wrote_tiny_model = !QFileInfo::exists(dir + "/transformer/config.json");
  ensure_tiny_model(dir);
  r.message = (r.wrote_tiny_model ? "No model was configured, so the tiny model was written to "
                                  : "No model is configured: using the tiny model in ") +
              r.model_dir + ".\n" + real_weights_help(r.folders.models);
  return r;
}

}  // namespace framesmith::app
