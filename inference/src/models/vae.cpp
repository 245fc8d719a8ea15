#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "framesmith/error.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "models/vae_blocks.h"

namespace framesmith {

using vae_detail::ParamSource;

namespace {

// ---------------------------------------------------------------------------------------------
// Config parsing helpers: every type error names the key.

[[noreturn]] void config_error(const std::string& key, const std::string& what) {
  throw Error("VAE config: \"" + key + "\" " + what);
}

// No VAE size is near 2^31; 2^63 and up arrive as unsigned and used to wrap negative.
void check_int_size(const char* key, const nlohmann::json& v) {
  constexpr std::int64_t kMax = std::int64_t(1) << 31;
  if ((v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(kMax)) ||
      (!v.is_number_unsigned() && std::abs(v.get<std::int64_t>()) > kMax))
    config_error(key, "is far too large, got " + v.dump());
}

std::int64_t read_int(const nlohmann::json& j, const char* key, std::int64_t def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_number_integer()) config_error(key, "must be an integer");
  check_int_size(key, j[key]);
  return j[key].get<std::int64_t>();
}

double read_double(const nlohmann::json& j, const char* key, double def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_number()) config_error(key, "must be a number");
  return j[key].get<double>();
}

bool read_bool(const nlohmann::json& j, const char* key, bool def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_boolean()) config_error(key, "must be true or false");
  return j[key].get<bool>();
}

std::string read_string(const nlohmann::json& j, const char* key, const std::string& def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_string()) config_error(key, "must be a string");
  return j[key].get<std::string>();
}

std::vector<std::int64_t> read_ints(const nlohmann::json& j, const char* key,
                                    std::vector<std::int64_t> def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_array()) config_error(key, "must be a list of integers");
  std::vector<std::int64_t> v;
  for (const auto& e : j[key]) {
    if (!e.is_number_integer()) config_error(key, "must be a list of integers");
    check_int_size(key, e);
    v.push_back(e.get<std::int64_t>());
  }
  return v;
}

std::vector<std::string> read_strings(const nlohmann::json& j, const char* key,
                                      std::vector<std::string> def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_array()) config_error(key, "must be a list of strings");
  std::vector<std::string> v;
  for (const auto& e : j[key]) {
    if (!e.is_string()) config_error(key, "must be a list of strings");
    v.push_back(e.get<std::string>());
  }
  return v;
}

bool is_power_of_two(std::int64_t v) {
  return v > 0 && (v & (v - 1)) == 0;
}

std::int64_t log2_of(std::int64_t v) {
  std::int64_t n = 0;
  while ((std::int64_t{1} << n) < v) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// The 1x1x1 convolutions around the latent (plain nn.Conv3d in diffusers, no `.conv` wrapper).

struct QuantConvs {
  at::Tensor quant_w, quant_b, post_quant_w, post_quant_b;
};

QuantConvs read_quant_convs(const ParamSource& p, const VaeConfig& cfg) {
  const std::int64_t two_l = 2 * cfg.latent_channels, l = cfg.latent_channels;
  QuantConvs q;
  q.quant_w = p.get("quant_conv.weight", {two_l, two_l, 1, 1, 1});
  q.quant_b = p.get("quant_conv.bias", {two_l});
  q.post_quant_w = p.get("post_quant_conv.weight", {l, l, 1, 1, 1});
  q.post_quant_b = p.get("post_quant_conv.bias", {l});
  return q;
}

// ---------------------------------------------------------------------------------------------
// Tiling, as diffusers 0.33.1 does it.

// diffusers' blend_v / blend_h / blend_t: the first `extent` slices of `b` along `dim` fade
// linearly from `a`'s last `extent` slices to `b`'s own. In place on `b`, as diffusers does, so
// that later blends see the result.
void blend_into(const at::Tensor& a, const at::Tensor& b, std::int64_t dim, std::int64_t extent) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  for (std::int64_t y = 0; y < extent; ++y) {
    const double w = static_cast<double>(y) / static_cast<double>(extent);
    at::Tensor slice = b.select(dim, y);
    slice.copy_(a.select(dim, a.size(dim) - extent + y) * (1.0 - w) + slice * w);
  }
}

// `x.narrow(dim, start, len)` clamped to the tensor, like a Python slice.
at::Tensor slice(const at::Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t len) {
  return x.narrow(dim, start, std::max<std::int64_t>(0, std::min(len, x.size(dim) - start)));
}

// Geometry of diffusers' tiled_encode / tiled_decode. "in" sizes are in the units of the tiled
// input, "out" sizes in the units of the function's output (pixels vs latents).
struct SpatialTiles {
  std::int64_t in_tile_h, in_tile_w, in_stride_h, in_stride_w;
  std::int64_t blend_h, blend_w, out_stride_h, out_stride_w, out_h, out_w;
};

// Overlapping tiles of `x` go through `fn`; each result is blended with the tile above and then
// the one to its left (in place, in diffusers' order), cropped to the output stride and joined.
at::Tensor run_spatial_tiles(const at::Tensor& x, const SpatialTiles& g,
                             const std::function<at::Tensor(const at::Tensor&)>& fn) {
  std::vector<std::vector<at::Tensor>> rows;
  for (std::int64_t i = 0; i < x.size(3); i += g.in_stride_h) {
    std::vector<at::Tensor> row;
    for (std::int64_t j = 0; j < x.size(4); j += g.in_stride_w)
      row.push_back(fn(slice(slice(x, 3, i, g.in_tile_h), 4, j, g.in_tile_w)));
    rows.push_back(std::move(row));
  }
  std::vector<at::Tensor> joined_rows;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::vector<at::Tensor> pieces;
    for (std::size_t j = 0; j < rows[i].size(); ++j) {
      const at::Tensor& tile = rows[i][j];
      if (i > 0) blend_into(rows[i - 1][j], tile, 3, g.blend_h);
      if (j > 0) blend_into(rows[i][j - 1], tile, 4, g.blend_w);
      pieces.push_back(slice(slice(tile, 3, 0, g.out_stride_h), 4, 0, g.out_stride_w));
    }
    joined_rows.push_back(at::cat(pieces, 4));
  }
  return slice(slice(at::cat(joined_rows, 3), 3, 0, g.out_h), 4, 0, g.out_w);
}

// Values diffusers would divide by or step with must be positive.
void check_tiling(const VaeTiling& t, std::int64_t sr, std::int64_t tr) {
  const std::pair<const char*, std::int64_t> spatial[] = {
      {"tile_sample_min_height", t.tile_sample_min_height},
      {"tile_sample_min_width", t.tile_sample_min_width},
      {"tile_sample_stride_height", t.tile_sample_stride_height},
      {"tile_sample_stride_width", t.tile_sample_stride_width}};
  const std::pair<const char*, std::int64_t> temporal[] = {
      {"tile_sample_min_num_frames", t.tile_sample_min_num_frames},
      {"tile_sample_stride_num_frames", t.tile_sample_stride_num_frames}};
  for (const auto& [name, v] : spatial)
    if (t.spatial && v < sr)
      throw Error(std::string("VAE tiling: ") + name + " = " + std::to_string(v) +
                  " is below the spatial compression ratio " + std::to_string(sr));
  for (const auto& [name, v] : temporal)
    if (t.temporal && v < tr)
      throw Error(std::string("VAE tiling: ") + name + " = " + std::to_string(v) +
                  " is below the temporal compression ratio " + std::to_string(tr));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// VaeConfig

VaeConfig VaeConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("VAE config: expected a JSON object");
  const std::string cls = read_string(j, "_class_name", "AutoencoderKLHunyuanVideo");
  if (cls != "AutoencoderKLHunyuanVideo")
    config_error("_class_name", "is \"" + cls + "\", expected \"AutoencoderKLHunyuanVideo\"");
  VaeConfig c;
  c.in_channels = read_int(j, "in_channels", c.in_channels);
  c.out_channels = read_int(j, "out_channels", c.out_channels);
  c.latent_channels = read_int(j, "latent_channels", c.latent_channels);
  c.down_block_types = read_strings(j, "down_block_types", c.down_block_types);
  c.up_block_types = read_strings(j, "up_block_types", c.up_block_types);
  c.block_out_channels = read_ints(j, "block_out_channels", c.block_out_channels);
  c.layers_per_block = read_int(j, "layers_per_block", c.layers_per_block);
  c.act_fn = read_string(j, "act_fn", c.act_fn);
  c.norm_num_groups = read_int(j, "norm_num_groups", c.norm_num_groups);
  c.scaling_factor = read_double(j, "scaling_factor", c.scaling_factor);
  c.spatial_compression_ratio =
      read_int(j, "spatial_compression_ratio", c.spatial_compression_ratio);
  c.temporal_compression_ratio =
      read_int(j, "temporal_compression_ratio", c.temporal_compression_ratio);
  c.mid_block_add_attention = read_bool(j, "mid_block_add_attention", c.mid_block_add_attention);
  c.validate();
  return c;
}

nlohmann::json VaeConfig::to_json() const {
  nlohmann::json j;
  j["_class_name"] = "AutoencoderKLHunyuanVideo";
  j["in_channels"] = in_channels;
  j["out_channels"] = out_channels;
  j["latent_channels"] = latent_channels;
  j["down_block_types"] = down_block_types;
  j["up_block_types"] = up_block_types;
  j["block_out_channels"] = block_out_channels;
  j["layers_per_block"] = layers_per_block;
  j["act_fn"] = act_fn;
  j["norm_num_groups"] = norm_num_groups;
  j["scaling_factor"] = scaling_factor;
  j["spatial_compression_ratio"] = spatial_compression_ratio;
  j["temporal_compression_ratio"] = temporal_compression_ratio;
  j["mid_block_add_attention"] = mid_block_add_attention;
  return j;
}

void VaeConfig::validate() const {
  for (const auto& [key, v] : {std::pair<const char*, std::int64_t>{"in_channels", in_channels},
                               {"out_channels", out_channels},
                               {"latent_channels", latent_channels},
                               {"layers_per_block", layers_per_block},
                               {"norm_num_groups", norm_num_groups}})
    if (v <= 0) config_error(key, "must be positive, got " + std::to_string(v));
  const std::size_t n = block_out_channels.size();
  // Ratio 4 puts the two time downsamplers in the two blocks before the last: 3 blocks at least.
  if (n < 3) config_error("block_out_channels", "needs at least 3 blocks");
  for (std::int64_t c : block_out_channels)
    if (c <= 0 || c % norm_num_groups != 0)
      config_error("block_out_channels",
                   "entry " + std::to_string(c) + " is not a positive multiple of norm_num_groups");
  if (down_block_types.size() != n)
    config_error("down_block_types", "must have one entry per block_out_channels entry");
  if (up_block_types.size() != n)
    config_error("up_block_types", "must have one entry per block_out_channels entry");
  for (const auto& t : down_block_types)
    if (t != "HunyuanVideoDownBlock3D") config_error("down_block_types", "has unsupported " + t);
  for (const auto& t : up_block_types)
    if (t != "HunyuanVideoUpBlock3D") config_error("up_block_types", "has unsupported " + t);
  if (act_fn != "silu" && act_fn != "swish")
    config_error("act_fn", "is \"" + act_fn + "\"; only silu (swish) is supported");
  if (!std::isfinite(scaling_factor) || scaling_factor <= 0)
    config_error("scaling_factor", "must be a positive number");
  // diffusers' decoder supports temporal ratio 4 only.
  if (temporal_compression_ratio != 4)
    config_error("temporal_compression_ratio",
                 "is " + std::to_string(temporal_compression_ratio) + "; only 4 is supported");
  if (!is_power_of_two(spatial_compression_ratio) ||
      log2_of(spatial_compression_ratio) > static_cast<std::int64_t>(n))
    config_error("spatial_compression_ratio",
                 "must be a power of two with at most one halving per block");
}

std::vector<ParamSpec> vae_parameter_specs(const VaeConfig& cfg) {
  cfg.validate();
  std::vector<ParamSpec> specs;
  const ParamSource p(&specs);
  vae_detail::Encoder(p.sub("encoder"), cfg);
  vae_detail::Decoder(p.sub("decoder"), cfg);
  read_quant_convs(p, cfg);
  return specs;
}

// ---------------------------------------------------------------------------------------------
// Temporal tiles

std::vector<VaeTemporalTile> vae_decode_tiles(std::int64_t num_latent_frames,
                                              const VaeTiling& tiling,
                                              std::int64_t temporal_compression_ratio) {
  const std::int64_t tr = temporal_compression_ratio;
  check_tiling(tiling, 1, tr);
  const std::int64_t min_frames = tiling.tile_sample_min_num_frames / tr;
  if (!tiling.temporal || num_latent_frames <= min_frames) return {{0, num_latent_frames}};
  std::vector<VaeTemporalTile> tiles;
  // Tiles of min_frames + 1 latents every stride latents (diffusers' _temporal_tiled_decode).
  for (std::int64_t i = 0; i < num_latent_frames; i += tiling.tile_sample_stride_num_frames / tr)
    tiles.push_back({i, std::min(i + min_frames + 1, num_latent_frames)});
  return tiles;
}

VaeTemporalAssembler::VaeTemporalAssembler(std::int64_t blend, std::int64_t stride,
                                           std::int64_t total_frames)
    : blend_(blend), stride_(stride), total_(total_frames) {}

void VaeTemporalAssembler::add(at::Tensor tile) {
  if (count_ > 0) {
    tile = tile.narrow(2, 1, tile.size(2) - 1);  // the previous tile already has this frame
    blend_into(prev_, tile, 2, blend_);
  }
  ready_.push_back(slice(tile, 2, 0, count_ > 0 ? stride_ : stride_ + 1));
  // Only the last `blend` frames (after this tile's own blend) matter for the next tile.
  const std::int64_t keep = std::min(tile.size(2), std::max<std::int64_t>(blend_, 0));
  prev_ = tile.narrow(2, tile.size(2) - keep, keep).clone();
  ++count_;
}

at::Tensor VaeTemporalAssembler::take_ready() {
  if (ready_.empty()) return at::Tensor();
  at::Tensor out = at::cat(ready_, 2);
  ready_.clear();
  out = slice(out, 2, 0, std::max<std::int64_t>(0, total_ - emitted_));
  emitted_ += out.size(2);
  return out;
}

at::Tensor VaeTemporalAssembler::finish() {
  if (count_ == 0) throw Error("VAE temporal tiling: finish() before any tile was added");
  at::Tensor out = take_ready();
  // Everything already taken: an empty [B, C, 0, H, W] keeps concatenation simple for callers.
  return out.defined() ? out : prev_.narrow(2, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Vae

at::Tensor VaePosterior::std() const {
  return at::exp(logvar * 0.5);
}

Vae::Vae(VaeConfig cfg, const Weights& w)
    : cfg_(std::move(cfg)), dtype_(w.dtype()), device_(w.device()) {
  cfg_.validate();
  const ParamSource p(&w);
  encoder_ = std::make_unique<vae_detail::Encoder>(p.sub("encoder"), cfg_);
  decoder_ = std::make_unique<vae_detail::Decoder>(p.sub("decoder"), cfg_);
  const QuantConvs q = read_quant_convs(p, cfg_);
  quant_w_ = q.quant_w;
  quant_b_ = q.quant_b;
  post_quant_w_ = q.post_quant_w;
  post_quant_b_ = q.post_quant_b;
}

Vae::~Vae() = default;

at::Tensor Vae::prepare(const at::Tensor& t, const char* what, std::int64_t channels) const {
  if (!t.defined()) throw Error(std::string("VAE: ") + what + " is undefined");
  if (t.dim() != 5 || t.size(1) != channels || t.numel() == 0)
    throw Error(std::string("VAE: ") + what + " has shape " + shape_str(t.sizes()) +
                ", expected non-empty [B, " + std::to_string(channels) + ", T, H, W]");
  if (!at::isFloatingType(t.scalar_type()))
    throw Error(std::string("VAE: ") + what + " must be a floating-point tensor");
  return t.to(device_, dtype_);
}

VaePosterior Vae::encode(const at::Tensor& pixels, const VaeTiling& tiling) const {
  const at::Tensor x = prepare(pixels, "pixels", cfg_.in_channels);
  const std::int64_t sr = cfg_.spatial_compression_ratio, tr = cfg_.temporal_compression_ratio;
  // One pass takes any frame count (the causal downsampling makes 1 + (T - 1) / 4 latents, as
  // FramePack-Studio's 16-frame batches of a clip rely on); the temporal tiles need 1 + 4k.
  const bool tiled_in_time = tiling.temporal && x.size(2) > tiling.tile_sample_min_num_frames;
  if ((tiled_in_time && (x.size(2) - 1) % tr != 0) || x.size(3) % sr != 0 || x.size(4) % sr != 0)
    throw Error("VAE: pixels has shape " + shape_str(x.sizes()) + "; frames must be 1 + " +
                std::to_string(tr) + "k (above " +
                std::to_string(tiling.tile_sample_min_num_frames) +
                " frames) and height/width multiples of " + std::to_string(sr));
  check_tiling(tiling, sr, tr);
  const at::Tensor moments = encode_moments(x, tiling);
  const std::int64_t l = cfg_.latent_channels;
  VaePosterior post;
  post.mean = moments.narrow(1, 0, l);
  post.logvar = at::clamp(moments.narrow(1, l, l), -30.0, 20.0);
  return post;
}

// diffusers' _encode: temporal tiles first, else spatial tiles, else one pass.
at::Tensor Vae::encode_moments(const at::Tensor& x, const VaeTiling& tiling) const {
  if (tiling.temporal && x.size(2) > tiling.tile_sample_min_num_frames)
    return encode_temporal_tiled(x, tiling);
  if (tiling.spatial &&
      (x.size(4) > tiling.tile_sample_min_width || x.size(3) > tiling.tile_sample_min_height))
    return encode_spatial_tiled(x, tiling);
  return encode_tile(x);
}

at::Tensor Vae::encode_tile(const at::Tensor& x) const {
  return at::conv3d(encoder_->forward(x), quant_w_, quant_b_);
}

at::Tensor Vae::encode_spatial_tiled(const at::Tensor& x, const VaeTiling& t) const {
  const std::int64_t sr = cfg_.spatial_compression_ratio;
  SpatialTiles g;
  g.in_tile_h = t.tile_sample_min_height;
  g.in_tile_w = t.tile_sample_min_width;
  g.in_stride_h = t.tile_sample_stride_height;
  g.in_stride_w = t.tile_sample_stride_width;
  g.out_stride_h = t.tile_sample_stride_height / sr;
  g.out_stride_w = t.tile_sample_stride_width / sr;
  // tiled_encode blends over latent rows/columns.
  g.blend_h = t.tile_sample_min_height / sr - g.out_stride_h;
  g.blend_w = t.tile_sample_min_width / sr - g.out_stride_w;
  g.out_h = x.size(3) / sr;
  g.out_w = x.size(4) / sr;
  return run_spatial_tiles(x, g, [this](const at::Tensor& tile) { return encode_tile(tile); });
}

at::Tensor Vae::encode_temporal_tiled(const at::Tensor& x, const VaeTiling& t) const {
  const std::int64_t tr = cfg_.temporal_compression_ratio;
  const std::int64_t frames = x.size(2);
  const std::int64_t latent_stride = t.tile_sample_stride_num_frames / tr;
  VaeTemporalAssembler join(t.tile_sample_min_num_frames / tr - latent_stride, latent_stride,
                            (frames - 1) / tr + 1);
  const bool spatial =
      t.spatial && (x.size(3) > t.tile_sample_min_height || x.size(4) > t.tile_sample_min_width);
  for (std::int64_t i = 0; i < frames; i += t.tile_sample_stride_num_frames) {
    const at::Tensor tile = slice(x, 2, i, t.tile_sample_min_num_frames + 1);
    join.add(spatial ? encode_spatial_tiled(tile, t) : encode_tile(tile));
  }
  return join.finish();
}

at::Tensor Vae::decode(const at::Tensor& z_in, const VaeTiling& tiling) const {
  const at::Tensor z = prepare(z_in, "z (latents)", cfg_.latent_channels);
  const std::int64_t sr = cfg_.spatial_compression_ratio, tr = cfg_.temporal_compression_ratio;
  check_tiling(tiling, sr, tr);
  if (tiling.temporal && z.size(2) > tiling.tile_sample_min_num_frames / tr)
    return decode_temporal_tiled(z, tiling);
  // diffusers' _decode compares the width with the *stride* (not the minimum) here.
  if (tiling.spatial && (z.size(4) > tiling.tile_sample_stride_width / sr ||
                         z.size(3) > tiling.tile_sample_min_height / sr))
    return decode_spatial_tiled(z, tiling);
  return decode_tile(z);
}

at::Tensor Vae::decode_tile(const at::Tensor& z_in) const {
  const at::Tensor z = prepare(z_in, "z (latents)", cfg_.latent_channels);
  return decoder_->forward(at::conv3d(z, post_quant_w_, post_quant_b_));
}

at::Tensor Vae::decode_spatial_tiled(const at::Tensor& z_in, const VaeTiling& t) const {
  const at::Tensor z = prepare(z_in, "z (latents)", cfg_.latent_channels);
  const std::int64_t sr = cfg_.spatial_compression_ratio;
  VaeTiling spatial_only = t;
  spatial_only.spatial = true;
  spatial_only.temporal = false;
  check_tiling(spatial_only, sr, cfg_.temporal_compression_ratio);
  SpatialTiles g;
  g.in_tile_h = t.tile_sample_min_height / sr;
  g.in_tile_w = t.tile_sample_min_width / sr;
  g.in_stride_h = t.tile_sample_stride_height / sr;
  g.in_stride_w = t.tile_sample_stride_width / sr;
  // tiled_decode blends over pixel rows/columns.
  g.blend_h = t.tile_sample_min_height - t.tile_sample_stride_height;
  g.blend_w = t.tile_sample_min_width - t.tile_sample_stride_width;
  g.out_stride_h = t.tile_sample_stride_height;
  g.out_stride_w = t.tile_sample_stride_width;
  g.out_h = z.size(3) * sr;
  g.out_w = z.size(4) * sr;
  return run_spatial_tiles(z, g, [this](const at::Tensor& tile) { return decode_tile(tile); });
}

at::Tensor Vae::decode_temporal_tiled(const at::Tensor& z, const VaeTiling& t) const {
  const std::int64_t sr = cfg_.spatial_compression_ratio, tr = cfg_.temporal_compression_ratio;
  VaeTemporalAssembler join(t.tile_sample_min_num_frames - t.tile_sample_stride_num_frames,
                            t.tile_sample_stride_num_frames, (z.size(2) - 1) * tr + 1);
  for (const VaeTemporalTile& tt : vae_decode_tiles(z.size(2), t, tr)) {
    const at::Tensor tile = z.narrow(2, tt.begin, tt.end - tt.begin);
    // Here (unlike _decode) both sides are compared with the tile minimum.
    const bool spatial = t.spatial && (tile.size(4) > t.tile_sample_min_width / sr ||
                                       tile.size(3) > t.tile_sample_min_height / sr);
    join.add(spatial ? decode_spatial_tiled(tile, t) : decode_tile(tile));
  }
  return join.finish();
}

// ---------------------------------------------------------------------------------------------
// Loading

std::shared_ptr<Vae> load_vae(const std::string& folder, at::ScalarType dtype, at::Device device,
                              std::shared_ptr<const io::TensorStore> store) {
  const std::string config_path = folder + "/config.json";
  const nlohmann::json j = io::read_json_file(config_path, "the VAE config");
  VaeConfig cfg;
  try {
    cfg = VaeConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  if (!store) store = std::make_shared<const io::TensorStore>(io::TensorStore::open(folder));
  const std::vector<std::string> problems = check_specs(*store, vae_parameter_specs(cfg));
  if (!problems.empty()) {
    std::string msg = folder + ": the VAE checkpoint does not match config.json: ";
    const std::size_t shown = std::min<std::size_t>(problems.size(), 8);
    for (std::size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > shown)
      msg += "; and " + std::to_string(problems.size() - shown) + " more";
    throw Error(msg);
  }
  return std::make_shared<Vae>(std::move(cfg), Weights(store, dtype, device));
}

}  // namespace framesmith
