// The size a start image is cropped to before generation, for front ends that show it before the
// job starts (the studio's image panel). Plain C++: app/ and ui/ include this.
#pragma once

namespace framesmith {

struct BucketSize {
  int width = 0;
  int height = 0;
};

// The bucket FramePack's find_nearest_bucket picks for a `width` x `height` picture at
// `resolution` (bucket_tools.py defines a table for 640 only; for other resolutions the 640 table
// is scaled by resolution / 640, sides rounded to multiples of 16). Throws Error for empty or
// oversized pictures and for resolutions outside 64..1024.
BucketSize start_image_bucket(int width, int height, int resolution);

}  // namespace framesmith
