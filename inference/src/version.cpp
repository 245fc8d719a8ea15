#include <sstream>

#include "compat/torch_compat.h"
#include "framesmith/pipeline.h"
#include "framesmith_version_config.h"

namespace framesmith {

std::string engine_version() {
  // What this binary was built with, so a bug report (and tools/check-libtorch2.sh) can tell a
  // CUDA build from one whose CUDA paths compiled out.
  std::ostringstream out;
  out << FRAMESMITH_VERSION_STRING << " (LibTorch " << compat::torch_version_string()
      << (FRAMESMITH_HAS_CUDA ? ", CUDA paths compiled in" : ", no CUDA paths")
      << (FRAMESMITH_HAS_SDPA ? ", SDPA attention" : ", chunked attention") << ")";
  return out.str();
}

}  // namespace framesmith
