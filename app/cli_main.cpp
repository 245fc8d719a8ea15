// framesmith-cli: the headless front end. Everything lives in app/cli.cpp.
#include <QCoreApplication>
#include <iostream>

#include "cli.h"
#include "video_writer.h"

int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);         // QImage plugins and locale; no event loop is run
  framesmith::app::quiet_ffmpeg_logging();  // x264 statistics are noise to a CLI user
  std::vector<std::string> args(argv + 1, argv + argc);
  return framesmith::app::run_cli(args, std::cout, std::cerr);
}
