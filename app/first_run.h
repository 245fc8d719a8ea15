// First start of the installed studio: the user's folders (XDG locations on Linux, through
// QStandardPaths), a tiny model when no model is configured, and a note on where the real
// weights come from. Plain C++ interface; Qt Core only inside.
#pragma once
#include <string>

namespace framesmith::app {

// The reverse-DNS application id: desktop file, AppStream metainfo and icon names.
inline constexpr const char* kAppId = "io.github.framesmith.Framesmith";

// Where Framesmith keeps a user's files. On Linux: ~/.config/framesmith, ~/.local/share/framesmith,
// ~/.cache/framesmith and ~/Videos/Framesmith (honouring XDG_*_HOME and xdg-user-dirs).
struct UserFolders {
  std::string config;
  std::string data;
  std::string models;  // <data>/models: the tiny model, and a README on the real weights
  std::string cache;
  std::string videos;  // where the studio writes its videos
};

// The folders for the current user. Creates nothing. Throws Error when the platform has no
// writable home location (HOME unset).
UserFolders user_folders();

// Creates the user's folders (all of UserFolders) and, in the models folder, a README.txt on
// where the real weights come from. Returns true on the first start (the data folder did not
// exist before). Cheap: the studio calls it at every start. Throws Error naming the folder that
// cannot be created or written.
bool ensure_user_folders(const UserFolders& folders);

struct FirstRun {
  UserFolders folders;
  bool first_start = false;  // the data folder did not exist before this call
  std::string model_dir;     // the configured model, else the tiny model
  bool wrote_tiny_model = false;
  std::string message;  // for the user: what was set up and how to get the real weights
};

// ensure_user_folders(), then, when `configured_model` is empty, makes sure the tiny model exists
// in <models>/tiny (app/model_locations.h: ensure_tiny_model, written into a temporary folder and
// renamed, so an interrupted first start never leaves half a model) and returns it as the model
// to use. Synchronous (about a second); the studio writes the tiny model on a worker thread
// instead. Throws Error naming the folder.
FirstRun prepare_first_run(const std::string& configured_model);

// How to get the real weights, in a few sentences (the same facts as README.md).
std::string real_weights_help(const std::string& models_dir);

}  // namespace framesmith::app
