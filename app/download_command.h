// `framesmith-cli download framepack|framepack-f1 [--to DIR|hf|hf:DIR] [--dry-run]`: the files
// FramePack uses, from the Hugging Face hub, with a progress bar on a terminal and plain lines
// otherwise. SIGINT / SIGTERM pause (partials kept; the same command resumes).
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "framesmith/hub.h"

namespace framesmith::app {

int cmd_download(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Where a download goes when --to is not given: the hub cache when it exists (one copy shared
// with Python tools), else <models folder>/<set name> in the plain layout.
hub::Target default_download_target(const std::string& set_name);

// The plan, in lines: per repository its files and size, the total, the target and free disk.
std::string describe_plan(const hub::DownloadPlan& plan);

}  // namespace framesmith::app
