#include "image/image_prep.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framesmith/error.h"

namespace framesmith::image {
namespace {

// ---- Pillow's resampling filters (Resample.c), evaluated in double as there. ----

constexpr double kPi = 3.14159265358979323846;  // M_PI, which not every platform defines

double box_filter(double x) {
  return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * kPi;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as Pillow has them
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  return (-3.0 <= x && x < 3.0) ? sinc_filter(x) * sinc_filter(x / 3) : 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(Resample r) {
  switch (r) {
    case Resample::kBox:
      return {box_filter, 0.5};
    case Resample::kBilinear:
      return {bilinear_filter, 1.0};
    case Resample::kHamming:
      return {hamming_filter, 1.0};
    case Resample::kBicubic:
      return {bicubic_filter, 2.0};
    case Resample::kLanczos:
      return {lanczos_filter, 3.0};
    case Resample::kNearest:
      break;
  }
  throw Error("image resize: filter " + std::to_string(static_cast<int>(r)) +
              " (nearest) is not supported; use Lanczos, bicubic, bilinear, box or hamming");
}

// The largest resize target pil_resize_crop accepts (Pillow itself fails on
// out_size * ksize * 8 > INT_MAX).
constexpr std::int64_t kMaxVirtualSide = std::int64_t{1} << 24;

// 8-bit results with two spare bits for the filters' overshoot: 32 - 8 - 2.
constexpr int kPrecisionBits = 22;

// Fixed-point weights of output pixels [begin, end) along one axis of an in_size -> out_size
// resize (Pillow's precompute_coeffs + normalize_coeffs_8bpc, for a window of the output).
struct Coeffs {
  std::vector<std::int64_t> first, count;  // source range of each output pixel
  std::vector<std::int32_t> k;             // `ksize` weights per output pixel
  std::int64_t ksize = 0;
};

Coeffs precompute(std::int64_t in_size, std::int64_t out_size, const Filter& f, std::int64_t begin,
                  std::int64_t end) {
  // Pillow passes the box edges as float; whole-image boxes of these sizes are exact in float.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = f.support * filterscale;
  const double inv_filterscale = 1.0 / filterscale;
  Coeffs c;
  c.ksize = static_cast<std::int64_t>(std::ceil(support)) * 2 + 1;
  const std::int64_t n = end - begin;
  c.first.resize(static_cast<std::size_t>(n));
  c.count.resize(static_cast<std::size_t>(n));
  c.k.assign(static_cast<std::size_t>(n * c.ksize), 0);
  std::vector<double> w(static_cast<std::size_t>(c.ksize));
  for (std::int64_t xx = begin; xx < end; ++xx) {
    const double center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; kept, as Pillow rounds this way.
    std::int64_t xmin = static_cast<std::int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    std::int64_t xmax = static_cast<std::int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (std::int64_t x = 0; x < xmax; ++x) {
      const double v = f.fn((static_cast<double>(x + xmin) - center + 0.5) * inv_filterscale);
      w[static_cast<std::size_t>(x)] = v;
      ww += v;
    }
    const std::size_t i = static_cast<std::size_t>(xx - begin);
    c.first[i] = xmin;
    c.count[i] = xmax;
    std::int32_t* k = &c.k[i * static_cast<std::size_t>(c.ksize)];
    for (std::int64_t x = 0; x < xmax; ++x) {
      double v = w[static_cast<std::size_t>(x)];
      if (ww != 0.0) v /= ww;
      const double fixed = v * (1 << kPrecisionBits);
      k[x] = static_cast<std::int32_t>(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
  }
  return c;
}

// Pillow's clip8: the accumulator's integer part, clamped to 0..255.
inline std::uint8_t clip8(std::int64_t acc) {
  const std::int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's table
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass: rows [row0, row0 + rows) of src [*, in_w, C] -> dst [rows, cols, C].
at::Tensor horizontal_pass(const at::Tensor& src, std::int64_t row0, std::int64_t rows,
                           const Coeffs& c) {
  const std::int64_t in_w = src.size(1), C = src.size(2);
  const std::int64_t cols = static_cast<std::int64_t>(c.first.size());
  at::Tensor dst = at::empty({rows, cols, C}, at::kByte);
  const std::uint8_t* in = src.data_ptr<std::uint8_t>();
  std::uint8_t* out = dst.data_ptr<std::uint8_t>();
  at::parallel_for(0, rows, 16, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t y = r0; y < r1; ++y) {
      const std::uint8_t* line = in + (row0 + y) * in_w * C;
      std::uint8_t* o = out + y * cols * C;
      for (std::int64_t xx = 0; xx < cols; ++xx) {
        const std::size_t i = static_cast<std::size_t>(xx);
        const std::int32_t* k = &c.k[i * static_cast<std::size_t>(c.ksize)];
        const std::uint8_t* px = line + c.first[i] * C;
        for (std::int64_t ch = 0; ch < C; ++ch) {
          std::int64_t acc = 1 << (kPrecisionBits - 1);
          for (std::int64_t x = 0; x < c.count[i]; ++x) acc += px[x * C + ch] * k[x];
          o[xx * C + ch] = clip8(acc);
        }
      }
    }
  });
  return dst;
}

// Vertical pass: src [*, W, C] with c.first relative to src row 0 -> dst [rows of c, W, C].
at::Tensor vertical_pass(const at::Tensor& src, const Coeffs& c) {
  const std::int64_t W = src.size(1), C = src.size(2), row = W * C;
  const std::int64_t rows = static_cast<std::int64_t>(c.first.size());
  at::Tensor dst = at::empty({rows, W, C}, at::kByte);
  const std::uint8_t* in = src.data_ptr<std::uint8_t>();
  std::uint8_t* out = dst.data_ptr<std::uint8_t>();
  at::parallel_for(0, rows, 16, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t yy = r0; yy < r1; ++yy) {
      const std::size_t i = static_cast<std::size_t>(yy);
      const std::int32_t* k = &c.k[i * static_cast<std::size_t>(c.ksize)];
      const std::uint8_t* top = in + c.first[i] * row;
      std::uint8_t* o = out + yy * row;
      for (std::int64_t x = 0; x < row; ++x) {
        std::int64_t acc = 1 << (kPrecisionBits - 1);
        for (std::int64_t y = 0; y < c.count[i]; ++y) acc += top[y * row + x] * k[y];
        o[x] = clip8(acc);
      }
    }
  });
  return dst;
}

// Output pixels [x0, x1) x [y0, y1) (inside the out_w x out_h result) of Pillow's resize of
// `img` (contiguous uint8 [H, W, C]). Horizontal pass first over the source rows the vertical
// pass will read, as ImagingResampleInner; an axis whose size is unchanged is not resampled.
at::Tensor resample_window(const at::Tensor& img, std::int64_t out_w, std::int64_t out_h,
                           const Filter& f, std::int64_t x0, std::int64_t x1, std::int64_t y0,
                           std::int64_t y1) {
  const std::int64_t H = img.size(0), W = img.size(1);
  const bool need_h = out_w != W, need_v = out_h != H;
  Coeffs vc;
  std::int64_t row0 = y0, row1 = y1;  // source rows the horizontal pass must produce
  if (need_v) {
    vc = precompute(H, out_h, f, y0, y1);
    row0 = std::numeric_limits<std::int64_t>::max();
    row1 = 0;
    for (std::size_t i = 0; i < vc.first.size(); ++i) {
      row0 = std::min(row0, vc.first[i]);
      row1 = std::max(row1, vc.first[i] + vc.count[i]);
    }
    if (row1 <= row0) row1 = row0 = 0;
    for (std::int64_t& r : vc.first) r -= row0;
  }
  at::Tensor rows;
  if (need_h)
    rows = horizontal_pass(img, row0, row1 - row0, precompute(W, out_w, f, x0, x1));
  else
    rows = img.slice(0, row0, row1).slice(1, x0, x1).contiguous();
  return need_v ? vertical_pass(rows, vc) : rows;
}

at::Tensor prepared(const at::Tensor& image, const std::string& what) {
  check_image(image, what);
  return image.to(at::kCPU).contiguous();
}

void check_output_size(std::int64_t width, std::int64_t height, const std::string& what) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide)
    throw Error(what + ": output size " + std::to_string(width) + "x" + std::to_string(height) +
                " is outside 1.." + std::to_string(kMaxImageSide));
}

// Python's round() of a float: half to even (nearbyint under the default rounding mode).
std::int64_t round_half_even(double v) {
  return static_cast<std::int64_t>(std::nearbyint(v));
}

}  // namespace

std::vector<Bucket> bucket_options(std::int64_t resolution) {
  static const std::vector<Bucket> k640 = {
      {416, 960}, {448, 864}, {480, 832}, {512, 768}, {544, 704}, {576, 672}, {608, 640},
      {640, 608}, {672, 576}, {704, 544}, {768, 512}, {832, 480}, {864, 448}, {960, 416}};
  if (resolution == 640) return k640;
  if (resolution < 64 || resolution > 1024 || resolution % 16 != 0)
    throw Error("image buckets: resolution " + std::to_string(resolution) +
                " must be a multiple of 16 in 64..1024");
  // FramePack's bucket_tools has only the 640 table; other resolutions (as FramePack-Studio
  // offers) scale its aspect ratios, each side rounded to a multiple of 16 (the VAE's 8 times the
  // transformer's patch of 2), duplicates dropped, order kept.
  std::vector<Bucket> out;
  for (const Bucket& b : k640) {
    auto side = [&](std::int64_t v) {
      return std::max<std::int64_t>(16, (v * resolution + 640 * 8) / (640 * 16) * 16);
    };
    const Bucket s{side(b.height), side(b.width)};
    if (out.empty() || !(out.back() == s)) out.push_back(s);
  }
  return out;
}

Bucket find_nearest_bucket(std::int64_t h, std::int64_t w, const std::vector<Bucket>& buckets) {
  check_image_size(h, w, "find_nearest_bucket");
  if (buckets.empty()) throw Error("find_nearest_bucket: empty bucket list");
  Bucket best;
  std::int64_t best_metric = std::numeric_limits<std::int64_t>::max();
  for (const Bucket& b : buckets) {
    const std::int64_t metric = std::llabs(h * b.width - w * b.height);
    if (metric <= best_metric) {  // `<=`: a tie goes to the later bucket
      best_metric = metric;
      best = b;
    }
  }
  return best;
}

Bucket find_nearest_bucket(std::int64_t h, std::int64_t w, std::int64_t resolution) {
  return find_nearest_bucket(h, w, bucket_options(resolution));
}

void check_image_size(std::int64_t height, std::int64_t width, const std::string& what) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (height < 1 || width < 1) throw Error(what + ": empty image (" + size + ")");
  if (height > kMaxImageSide || width > kMaxImageSide)
    throw Error(what + ": image " + size + " is too large (at most " +
                std::to_string(kMaxImageSide) + " pixels per side)");
  if (height * width > kMaxImagePixels)
    throw Error(what + ": image " + size + " has " + std::to_string(height * width) +
                " pixels, more than the limit of " + std::to_string(kMaxImagePixels));
}

void check_image(const at::Tensor& image, const std::string& what) {
  if (!image.defined()) throw Error(what + ": no image");
  if (image.dim() != 3 || (image.size(2) != 3 && image.size(2) != 1)) {
    std::ostringstream o;
    o << what << ": expected an [height, width, 3] (or 1-channel) image, got shape "
      << image.sizes();
    throw Error(o.str());
  }
  if (image.scalar_type() != at::kByte)
    throw Error(what + ": expected uint8 pixels, got " +
                std::string(c10::toString(image.scalar_type())));
  check_image_size(image.size(0), image.size(1), what);
}

at::Tensor pil_resize_crop(const at::Tensor& image, std::int64_t width, std::int64_t height,
                           Resample filter, std::int64_t left, std::int64_t top,
                           std::int64_t crop_width, std::int64_t crop_height) {
  const at::Tensor img = prepared(image, "image resize");
  // Only the crop is computed, so the (virtual) resized image may be large; its sizes still have
  // to fit Pillow's int arithmetic with room to spare.
  if (width < 1 || height < 1 || width > kMaxVirtualSide || height > kMaxVirtualSide)
    throw Error("image resize: size " + std::to_string(width) + "x" + std::to_string(height) +
                " is outside 1.." + std::to_string(kMaxVirtualSide) +
                " (an aspect ratio too extreme for the requested crop)");
  check_output_size(crop_width, crop_height, "image crop");
  const Filter f = filter_for(filter);
  at::Tensor out = at::zeros({crop_height, crop_width, img.size(2)}, at::kByte);
  // The part of the crop box that lies inside the resized image; the rest stays black.
  const std::int64_t x0 = std::max<std::int64_t>(left, 0);
  const std::int64_t x1 = std::min(left + crop_width, width);
  const std::int64_t y0 = std::max<std::int64_t>(top, 0);
  const std::int64_t y1 = std::min(top + crop_height, height);
  if (x1 <= x0 || y1 <= y0) return out;
  const at::Tensor win = resample_window(img, width, height, f, x0, x1, y0, y1);
  out.slice(0, y0 - top, y1 - top).slice(1, x0 - left, x1 - left).copy_(win);
  return out;
}

at::Tensor pil_resize(const at::Tensor& image, std::int64_t width, std::int64_t height,
                      Resample filter) {
  check_output_size(width, height, "image resize");
  check_image(image, "image resize");
  if (image.size(0) == height && image.size(1) == width)
    return image.to(at::kCPU).contiguous().clone();  // PIL: same size -> copy, whatever filter
  return pil_resize_crop(image, width, height, filter, 0, 0, width, height);
}

at::Tensor resize_and_center_crop(const at::Tensor& image, std::int64_t target_width,
                                  std::int64_t target_height) {
  check_image(image, "resize_and_center_crop");
  check_output_size(target_width, target_height, "resize_and_center_crop");
  const std::int64_t H = image.size(0), W = image.size(1);
  if (target_height == H && target_width == W) return image.to(at::kCPU).contiguous().clone();
  const double scale = std::max(static_cast<double>(target_width) / static_cast<double>(W),
                                static_cast<double>(target_height) / static_cast<double>(H));
  const std::int64_t rw = round_half_even(static_cast<double>(W) * scale);
  const std::int64_t rh = round_half_even(static_cast<double>(H) * scale);
  // PIL's crop rounds each corner of the float box half-to-even.
  const std::int64_t left = round_half_even((rw - target_width) / 2.0);
  const std::int64_t top = round_half_even((rh - target_height) / 2.0);
  const std::int64_t right = round_half_even((rw + target_width) / 2.0);
  const std::int64_t bottom = round_half_even((rh + target_height) / 2.0);
  return pil_resize_crop(image, rw, rh, Resample::kLanczos, left, top, right - left, bottom - top);
}

ImageProcessorConfig ImageProcessorConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("image processor config: expected a JSON object");
  ImageProcessorConfig c;
  auto flag = [&](const char* key, bool def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_boolean()) throw Error(std::string("field \"") + key + "\" must be a bool");
    return j[key].get<bool>();
  };
  auto number = [&](const char* key, double def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_number()) throw Error(std::string("field \"") + key + "\" must be a number");
    return j[key].get<double>();
  };
  auto triple = [&](const char* key, std::vector<double> def) {
    if (!j.contains(key) || j[key].is_null()) return def;
    const nlohmann::json& v = j[key];
    if (v.is_number()) return std::vector<double>(3, v.get<double>());
    if (!v.is_array() || v.empty())
      throw Error(std::string("field \"") + key + "\" must be a number or a list of numbers");
    std::vector<double> r;
    for (const auto& e : v) {
      if (!e.is_number()) throw Error(std::string("field \"") + key + "\" has a non-number");
      r.push_back(e.get<double>());
    }
    return r;
  };
  c.do_resize = flag("do_resize", c.do_resize);
  if (j.contains("size") && !j["size"].is_null()) {
    const nlohmann::json& s = j["size"];
    if (s.is_number_integer()) {
      c.height = c.width = s.get<std::int64_t>();
    } else if (s.is_object() && s.contains("height") && s.contains("width") &&
               s["height"].is_number_integer() && s["width"].is_number_integer()) {
      c.height = s["height"].get<std::int64_t>();
      c.width = s["width"].get<std::int64_t>();
    } else {
      throw Error("field \"size\" must be {\"height\": h, \"width\": w} (SigLIP's form), got " +
                  s.dump());
    }
  }
  const double resample = number("resample", static_cast<double>(c.resample));
  if (resample < 0 || resample > 5 || resample != std::floor(resample))
    throw Error("field \"resample\" must be a Pillow filter number 0..5");
  c.resample = static_cast<Resample>(static_cast<int>(resample));
  if (c.do_resize) {
    check_output_size(c.width, c.height, "field \"size\"");
    filter_for(c.resample);  // unsupported filters fail at load, not on the first picture
  }
  c.do_rescale = flag("do_rescale", c.do_rescale);
  c.rescale_factor = number("rescale_factor", c.rescale_factor);
  c.do_normalize = flag("do_normalize", c.do_normalize);
  c.image_mean = triple("image_mean", c.image_mean);
  c.image_std = triple("image_std", c.image_std);
  if (c.image_mean.size() != c.image_std.size())
    throw Error("fields \"image_mean\" and \"image_std\" differ in length");
  for (double s : c.image_std)
    if (c.do_normalize && s == 0) throw Error("field \"image_std\" has a zero");
  return c;
}

ImageProcessorConfig ImageProcessorConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the image processor config");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw Error(path + ": invalid JSON (" + e.what() + ")");
  }
  try {
    return from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

at::Tensor preprocess_image(const at::Tensor& image, const ImageProcessorConfig& cfg) {
  check_image(image, "image preprocessing");
  at::Tensor px = cfg.do_resize ? pil_resize(image, cfg.width, cfg.height, cfg.resample)
                                : image.to(at::kCPU).contiguous();
  const std::int64_t H = px.size(0), W = px.size(1), C = px.size(2);
  if (cfg.do_normalize && static_cast<std::int64_t>(cfg.image_mean.size()) != C)
    throw Error("image preprocessing: image_mean/image_std have " +
                std::to_string(cfg.image_mean.size()) + " entries for " + std::to_string(C) +
                " channels");
  at::Tensor out = at::empty({1, C, H, W}, at::kFloat);
  const std::uint8_t* in = px.data_ptr<std::uint8_t>();
  float* o = out.data_ptr<float>();
  for (std::int64_t ch = 0; ch < C; ++ch) {
    const float mean = cfg.do_normalize ? static_cast<float>(cfg.image_mean[ch]) : 0.0f;
    const float std = cfg.do_normalize ? static_cast<float>(cfg.image_std[ch]) : 1.0f;
    for (std::int64_t i = 0; i < H * W; ++i) {
      // transformers: rescale in float64, stored as float32; normalize in float32.
      float v = cfg.do_rescale
                    ? static_cast<float>(static_cast<double>(in[i * C + ch]) * cfg.rescale_factor)
                    : static_cast<float>(in[i * C + ch]);
      if (cfg.do_normalize) v = (v - mean) / std;
      o[ch * H * W + i] = v;
    }
  }
  return out;
}

}  // namespace framesmith::image
