#include "framesmith/image_bucket.h"

#include <string>
#include <vector>

#include "framesmith/error.h"
#include "image/image_prep.h"

namespace framesmith {
BucketSize start_image_bucket(int width, int height, int resolution) {
  if (resolution < 64 || resolution > 1024)
    throw Error("resolution must be 64..1024, not " + std::to_string(resolution));
  image::check_image_size(height, width, "start image");
  const image::Bucket b = image::find_nearest_bucket(height, width, std::int64_t(resolution));
  return {static_cast<int>(b.width), static_cast<int>(b.height)};
}

}  // namespace framesmith
