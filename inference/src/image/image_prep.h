// Start-image preparation as FramePack does it, on plain uint8 [H, W, C] tensors (no PIL):
//  - find_nearest_bucket: diffusers_helper/bucket_tools.py (the aspect-ratio buckets at 640);
//  - resize_and_center_crop: diffusers_helper/utils.py (PIL Lanczos to cover, centre crop);
//  - preprocess_image: transformers' SiglipImageProcessor for the image encoder (PIL resize with
//    the configured filter, rescale, normalize), from feature_extractor/preprocessor_config.json.
// pil_resize reproduces Pillow's ImagingResample for 8-bit images: separable passes (horizontal
// first), filter weights normalised in double, then rounded to 22-bit fixed point and accumulated
// in integers, so the results equal Pillow's bit for bit.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace framesmith::image {

struct Bucket {
  std::int64_t height = 0;
  std::int64_t width = 0;
  bool operator==(const Bucket& o) const { return height == o.height && width == o.width; }
};

// The buckets bucket_tools.py defines for 640; other resolutions scale its aspect ratios.
std::vector<Bucket> bucket_options(std::int64_t resolution);
// bucket_tools' rule: the bucket minimising |h * bucket_w - w * bucket_h|, ties to the later one.
Bucket find_nearest_bucket(std::int64_t h, std::int64_t w, const std::vector<Bucket>& buckets);
Bucket find_nearest_bucket(std::int64_t h, std::int64_t w, std::int64_t resolution = 640);

// Pillow's filter numbers (Image.Resampling), as preprocessor_config.json's "resample" uses them.
enum class Resample : int {
  kNearest = 0,
  kLanczos = 1,
  kBilinear = 2,
  kBicubic = 3,
  kBox = 4,
  kHamming = 5
};

// Input limits: larger pictures are refused with an Error before any work (Pillow refuses more
// than 2 x 89478485 pixels as a decompression bomb; a side limit keeps index arithmetic small).
constexpr std::int64_t kMaxImageSide = 16384;
constexpr std::int64_t kMaxImagePixels = 178956970;

// Throws Error unless 1 <= h, w <= kMaxImageSide and h * w <= kMaxImagePixels.
void check_image_size(std::int64_t height, std::int64_t width, const std::string& what);
// Throws Error unless `image` is a defined uint8 [H, W, 1 or 3] tensor within the limits. Checks
// sizes only: an expanded (zero-stride) view is not touched.
void check_image(const at::Tensor& image, const std::string& what);

// PIL's Image.resize((width, height), filter) of an 8-bit image (no reducing_gap): [H, W, C] ->
// [height, width, C] uint8. Same size returns a copy, as PIL does. kNearest is not supported.
at::Tensor pil_resize(const at::Tensor& image, std::int64_t width, std::int64_t height,
                      Resample filter);
// PIL's resize((width, height), filter).crop((left, top, left + crop_width, top + crop_height)),
// computing only the cropped pixels; parts of the box outside the resized image are black, as
// PIL's crop makes them.
at::Tensor pil_resize_crop(const at::Tensor& image, std::int64_t width, std::int64_t height,
                           Resample filter, std::int64_t left, std::int64_t top,
                           std::int64_t crop_width, std::int64_t crop_height);

// FramePack's resize_and_center_crop: unchanged (a copy) when already target-sized, else scale
// by max(tw / W, th / H), round the size half-to-even, Lanczos-resize, crop the centre box with
// its corners rounded half-to-even (as PIL's crop rounds them). uint8 [H, W, C] in and out.
at::Tensor resize_and_center_crop(const at::Tensor& image, std::int64_t target_width,
                                  std::int64_t target_height);

// The fields of preprocessor_config.json that SiglipImageProcessor uses (its defaults).
struct ImageProcessorConfig {
  bool do_resize = true;
  std::int64_t height = 224;
  std::int64_t width = 224;
  Resample resample = Resample::kBicubic;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::vector<double> image_mean = {0.5, 0.5, 0.5};
  std::vector<double> image_std = {0.5, 0.5, 0.5};

  static ImageProcessorConfig from_json(const nlohmann::json& j);
  // Reads `path` (preprocessor_config.json); errors name the file.
  static ImageProcessorConfig load(const std::string& path);
};

// SiglipImageProcessor.preprocess of one uint8 [H, W, C] picture -> float32 [1, C, height, width]:
// PIL resize (8-bit), x * rescale_factor (in double, stored as float32), then (x - mean) / std in
// float32, as transformers computes it.
at::Tensor preprocess_image(const at::Tensor& image, const ImageProcessorConfig& cfg);

}  // namespace framesmith::image
