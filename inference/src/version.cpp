#include "compat/torch_compat.h"
#include "framesmith/pipeline.h"
#include "framesmith_version_config.h"

namespace framesmith {

std::string engine_version() {
  return std::string(FRAMESMITH_VERSION_STRING) + " (LibTorch " + compat::torch_version_string() +
         ")";
}

}  // namespace framesmith
