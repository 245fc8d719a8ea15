#include "models/transformer_packed.h"

#include <sstream>
#include <tuple>

#include "framesmith/error.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "models/rope.h"
#include "models/transformer_params.h"

namespace framesmith {
namespace transformer {

at::Tensor PatchEmbed::operator()(const at::Tensor& x) const {
  const std::int64_t b = x.size(0), c = x.size(1);
  const std::int64_t t = x.size(2) / kernel[0], h = x.size(3) / kernel[1],
                     w = x.size(4) / kernel[2];
  const at::Tensor patches = x.narrow(2, 0, t * kernel[0])
                                 .narrow(3, 0, h * kernel[1])
                                 .narrow(4, 0, w * kernel[2])
                                 .reshape({b, c, t, kernel[0], h, kernel[1], w, kernel[2]})
                                 .permute({0, 2, 4, 6, 1, 3, 5, 7})
                                 .reshape({b, t * h * w, -1});
  return at::linear(patches, weight.flatten(1), bias);
}

Dims dims_of(const TransformerConfig& cfg) {
  Dims d;
  d.heads = cfg.num_attention_heads;
  d.head_dim = cfg.attention_head_dim;
  d.hidden = cfg.inner_dim();
  d.mlp = cfg.mlp_dim();
  return d;
}

namespace {

void bind(const ParamBinder& p, PatchEmbed& e, std::int64_t inner, std::int64_t channels,
          std::array<std::int64_t, 3> kernel) {
  e.kernel = kernel;
  p.bind(e.weight, "weight", {inner, channels, kernel[0], kernel[1], kernel[2]});
  p.bind(e.bias, "bias", {inner}, Init::kZeros);
}

}  // namespace

std::vector<ModuleRef> module_list(const TransformerConfig& cfg) {
  std::vector<ModuleRef> l;
  l.push_back({ModuleKind::kXEmbedder, 0, "x_embedder"});
  if (cfg.has_clean_x_embedder) l.push_back({ModuleKind::kCleanXEmbedder, 0, "clean_x_embedder"});
  l.push_back({ModuleKind::kContextEmbedder, 0, "context_embedder"});
  l.push_back({ModuleKind::kTimeTextEmbed, 0, "time_text_embed"});
  if (cfg.has_image_proj) l.push_back({ModuleKind::kImageProjection, 0, "image_projection"});
  for (int i = 0; i < cfg.num_layers; ++i)
    l.push_back({ModuleKind::kDualBlock, i, "transformer_blocks." + std::to_string(i)});
  for (int i = 0; i < cfg.num_single_layers; ++i)
    l.push_back({ModuleKind::kSingleBlock, i, "single_transformer_blocks." + std::to_string(i)});
  l.push_back({ModuleKind::kNormOut, 0, "norm_out"});
  l.push_back({ModuleKind::kProjOut, 0, "proj_out"});
  return l;
}

void bind_module(const ParamBinder& root, PackedParams& m, const TransformerConfig& cfg,
                 const ModuleRef& r) {
  const Dims d = dims_of(cfg);
  const std::int64_t h = d.hidden, ps = cfg.patch_size;
  const ParamBinder p = root.sub(r.name);
  const auto block = [](auto& blocks, int i) -> auto& {
    return blocks.at(static_cast<std::size_t>(i));
  };
  switch (r.kind) {
    case ModuleKind::kXEmbedder:
      bind(p.sub("proj"), m.x_embedder, h, cfg.in_channels, {cfg.patch_size_t, ps, ps});
      break;
    case ModuleKind::kCleanXEmbedder:
      bind(p.sub("proj"), m.clean_1x, h, kCleanLatentChannels, {1, 2, 2});
      bind(p.sub("proj_2x"), m.clean_2x, h, kCleanLatentChannels, {2, 4, 4});
      bind(p.sub("proj_4x"), m.clean_4x, h, kCleanLatentChannels, {4, 8, 8});
      break;
    case ModuleKind::kContextEmbedder:
      bind(p, m.context_embedder, d, cfg.text_embed_dim, cfg.num_refiner_layers);
      break;
    case ModuleKind::kTimeTextEmbed:
      bind(p.sub("timestep_embedder"), m.timestep_embedder, h);
      if (cfg.guidance_embeds) bind(p.sub("guidance_embedder"), m.guidance_embedder, h);
      bind(p.sub("text_embedder.linear_1"), m.text_embedder.a, h, cfg.pooled_projection_dim);
      bind(p.sub("text_embedder.linear_2"), m.text_embedder.b, h, h);
      break;
    case ModuleKind::kImageProjection:
      bind(p.sub("up"), m.image_projection.a, 3 * h, cfg.image_proj_dim);
      bind(p.sub("down"), m.image_projection.b, h, 3 * h);
      break;
    case ModuleKind::kDualBlock:
      bind(p, block(m.dual, r.index), d);
      break;
    case ModuleKind::kSingleBlock:
      bind(p, block(m.single, r.index), d);
      break;
    case ModuleKind::kNormOut:
      bind(p.sub("linear"), m.norm_out, 2 * h, h);
      break;
    case ModuleKind::kProjOut:
      bind(p, m.proj_out, cfg.patch_size_t * ps * ps * cfg.out_channels, h);
      break;
  }
}

void bind(const ParamBinder& p, PackedParams& m, const TransformerConfig& cfg) {
  m.dual.resize(static_cast<std::size_t>(cfg.num_layers));
  m.single.resize(static_cast<std::size_t>(cfg.num_single_layers));
  for (const ModuleRef& r : module_list(cfg)) bind_module(p, m, cfg, r);
}

}  // namespace transformer

struct PackedTransformer::Params : transformer::PackedParams {};

namespace {

std::string shape_of(const at::Tensor& t) {
  std::ostringstream o;
  o << t.sizes();
  return o.str();
}

void expect_dims(const at::Tensor& t, const char* name, std::int64_t dims) {
  if (!t.defined()) throw Error(std::string("transformer input ") + name + " is missing");
  if (t.dim() != dims)
    throw Error(std::string("transformer input ") + name + " must have " + std::to_string(dims) +
                " dimensions, got " + shape_of(t));
}

void expect_size(const at::Tensor& t, const char* name, std::int64_t dim, std::int64_t size) {
  if (t.size(dim) != size)
    throw Error(std::string("transformer input ") + name + " has shape " + shape_of(t) +
                ": dimension " + std::to_string(dim) + " should be " + std::to_string(size));
}

// Horner evaluation of FramePack's TeaCache rescale polynomial (highest power first).
double teacache_rescale(double x) {
  static const double kCoefficients[] = {7.33226126e+02, -4.01131952e+02, 6.75869174e+01,
                                         -3.14987800e+00, 9.61237896e-02};
  double y = 0.0;
  for (double c : kCoefficients) y = y * x + c;
  return y;
}

}  // namespace

PackedTransformer::PackedTransformer(TransformerConfig cfg, const Weights& w)
    : cfg_(std::move(cfg)),
      dtype_(w.dtype()),
      device_(w.device()),
      weights_(w),
      p_(std::make_unique<Params>()),
      modules_(transformer::module_list(cfg_)) {
  transformer::bind(ParamBinder::loader(w), *p_, cfg_);
  // Blocks come after the embedders: the first module at or after kDualBlock starts them.
  while (first_block_ < num_modules() && modules_[static_cast<std::size_t>(first_block_)].kind <
                                             transformer::ModuleKind::kDualBlock)
    ++first_block_;
  // FramePack's high_quality_fp32_output_for_inference: the last projection runs in float32
  // (loaded at use, weight_form says so and the placement converts).
  if (w.conversion() == Conversion::kAtLoad) {
    p_->proj_out.weight = p_->proj_out.weight.to(at::kFloat);
    p_->proj_out.bias = p_->proj_out.bias.to(at::kFloat);
  }
}

WeightForm PackedTransformer::weight_form(const std::string& key) const {
  WeightForm f = weights_.form(key);
  if (key.rfind("proj_out.", 0) == 0) f.dtype = at::kFloat;
  return f;
}

void PackedTransformer::set_lora_patch(std::shared_ptr<const LoraPatch> patch) {
  const std::shared_ptr<const LoraPatch> old = weights_.lora();
  if (!old && !patch) return;
  weights_ = weights_.with_lora(patch);
  if (weights_.conversion() == Conversion::kAtUse) return;
  for (int i = 0; i < num_modules(); ++i)
    for (auto& [key, t] : module_tensors(i)) {
      if (!(old && old->count(key)) && !(patch && patch->count(key))) continue;
      at::Tensor fresh = weights_.get(key, t->sizes());
      // FramePack's float32 output projection (see the constructor).
      if (key.rfind("proj_out.", 0) == 0) fresh = fresh.to(at::kFloat);
      *t = fresh;
    }
}

PackedTransformer::~PackedTransformer() = default;

int PackedTransformer::num_blocks() const {
  return static_cast<int>(p_->dual.size() + p_->single.size());
}

int PackedTransformer::num_modules() const {
  return static_cast<int>(modules_.size());
}

const std::string& PackedTransformer::module_name(int i) const {
  return module(i).name;
}

const transformer::ModuleRef& PackedTransformer::module(int i) const {
  if (i < 0 || i >= num_modules())
    throw Error("transformer: module index " + std::to_string(i) + " out of range");
  return modules_[static_cast<std::size_t>(i)];
}

std::vector<std::pair<std::string, at::Tensor*>> PackedTransformer::module_tensors(int i) {
  ParamBinder::TensorRefs refs;
  transformer::bind_module(ParamBinder::collector(&refs), *p_, cfg_, module(i));
  return refs;
}

int PackedTransformer::module_index(transformer::ModuleKind kind) const {
  for (std::size_t i = 0; i < modules_.size(); ++i)
    if (modules_[i].kind == kind) return static_cast<int>(i);
  return -1;
}

void PackedTransformer::set_compute_device(at::Device device) {
  device_ = device;
}

void PackedTransformer::initialize_teacache(bool enable, int num_steps, double rel_l1_thresh) {
  if (enable && num_steps < 1) throw Error("TeaCache: num_steps must be at least 1");
  tea_ = TeaCache();
  computed_calls_ = reused_calls_ = 0;
  tea_.enabled = enable;
  tea_.num_steps = num_steps;
  tea_.threshold = rel_l1_thresh;
}

void PackedTransformer::initialize_magcache(bool enable, std::vector<double> ratios, int num_steps,
                                            MagCacheSettings settings) {
  if (enable && num_steps < 1) throw Error("MagCache: num_steps must be at least 1");
  if (enable && ratios.size() != std::size_t(num_steps))
    throw Error("MagCache: " + std::to_string(ratios.size()) + " magnitude ratios for " +
                std::to_string(num_steps) + " steps");
  mag_ = MagCache();
  computed_calls_ = reused_calls_ = 0;
  mag_.decision.enabled = enable;
  mag_.decision.ratios = std::move(ratios);
  mag_.decision.num_steps = num_steps;
  mag_.decision.settings = settings;
}

bool PackedTransformer::teacache_should_compute(const at::Tensor& img, const at::Tensor& temb) {
  const at::Tensor modulated = transformer::modulated_input(p_->dual.at(0), img, temb);
  bool compute = true;
  const at::Tensor& prev = tea_.previous_modulated_input;
  if (tea_.count == 0 || tea_.count == tea_.num_steps - 1 || !prev.defined() ||
      prev.sizes() != modulated.sizes()) {
    tea_.accumulated = 0.0;  // (a changed token count cannot reuse anything: compute)
  } else {
    const double rel_l1 = ((modulated - prev).abs().mean() / prev.abs().mean()).item<double>();
    tea_.accumulated += teacache_rescale(rel_l1);
    compute = tea_.accumulated >= tea_.threshold;
    if (compute) tea_.accumulated = 0.0;
  }
  tea_.previous_modulated_input = modulated;
  if (++tea_.count == tea_.num_steps) tea_.count = 0;
  const at::Tensor& res = tea_.previous_residual;
  return compute || !res.defined() || res.sizes() != img.sizes();
}

at::Tensor PackedTransformer::forward(const TransformerInputs& in) {
  if (weights_.conversion() == Conversion::kAtUse && !before_module)
    throw Error(
        "transformer: its weights were loaded at use (the checkpoint's dtype, memory-mapped) and "
        "nothing places them (no memory governor attached)");
  const TransformerConfig& c = cfg_;
  const auto prep = [&](const at::Tensor& t) { return t.to(device_, dtype_); };
  const auto index = [&](const at::Tensor& t) { return t.to(device_, at::kLong); };

  expect_dims(in.hidden_states, "hidden_states", 5);
  const std::int64_t batch = in.hidden_states.size(0);
  expect_size(in.hidden_states, "hidden_states", 1, c.in_channels);
  const std::int64_t pt = c.patch_size_t, ps = c.patch_size;
  const std::int64_t frames = in.hidden_states.size(2) / pt, height = in.hidden_states.size(3) / ps,
                     width = in.hidden_states.size(4) / ps;
  if (frames < 1 || height < 1 || width < 1)
    throw Error("transformer input hidden_states " + shape_of(in.hidden_states) +
                " is smaller than one patch");

  // Each module's weights are announced before use (the memory governor streams them in).
  const auto use = [this](transformer::ModuleKind kind) {
    if (before_module) before_module(module_index(kind));
  };

  // 1. Latent tokens and their RoPE table; clean context tokens are prepended (1x, then 2x,
  //    then 4x in front), each with the table of its own (coarser) grid.
  use(transformer::ModuleKind::kXEmbedder);
  at::Tensor img = p_->x_embedder(prep(in.hidden_states));
  at::Tensor latent_indices = in.latent_indices.defined()
                                  ? index(in.latent_indices)
                                  : at::arange(frames, at::TensorOptions(device_).dtype(at::kLong))
                                        .unsqueeze(0)
                                        .expand({batch, frames});
  expect_dims(latent_indices, "latent_indices", 2);
  expect_size(latent_indices, "latent_indices", 1, frames);
  const auto table = [&](const at::Tensor& idx) {
    return rope::frequencies(index(idx), height, width, c.rope_axes_dim, c.rope_theta);
  };
  at::Tensor freqs = rope::to_tokens(table(latent_indices));

  struct Context {
    const at::Tensor& latents;
    const at::Tensor& indices;
    const transformer::PatchEmbed& embed;
    std::array<std::int64_t, 3> pool;  // RoPE grid down-sampling (1 = none)
    const char* name;
  };
  const Context contexts[] = {
      {in.clean_latents, in.clean_latent_indices, p_->clean_1x, {1, 1, 1}, "clean_latents"},
      {in.clean_latents_2x,
       in.clean_latent_indices_2x,
       p_->clean_2x,
       {2, 2, 2},
       "clean_latents_2x"},
      {in.clean_latents_4x,
       in.clean_latent_indices_4x,
       p_->clean_4x,
       {4, 4, 4},
       "clean_latents_4x"},
  };
  bool clean_announced = false;
  for (const Context& ctx : contexts) {
    if (!ctx.latents.defined() || !ctx.indices.defined()) continue;
    if (!c.has_clean_x_embedder)
      throw Error(std::string("transformer: ") + ctx.name +
                  " given but the model has no clean_x_embedder");
    if (!clean_announced) use(transformer::ModuleKind::kCleanXEmbedder);
    clean_announced = true;
    expect_dims(ctx.latents, ctx.name, 5);
    at::Tensor x = prep(ctx.latents);
    if (ctx.pool[0] > 1) x = rope::pad_replicate_3d(x, ctx.embed.kernel);
    const at::Tensor tokens = ctx.embed(x);
    at::Tensor f = table(ctx.indices);
    if (ctx.pool[0] > 1) f = rope::downsample(f, ctx.pool);
    f = rope::to_tokens(f);
    if (f.size(1) != tokens.size(1))
      throw Error(std::string("transformer input ") + ctx.name + " " + shape_of(ctx.latents) +
                  " does not match its indices or the latent grid (" +
                  std::to_string(tokens.size(1)) + " tokens, " + std::to_string(f.size(1)) +
                  " positions)");
    img = at::cat({tokens, img}, 1);
    freqs = at::cat({f, freqs}, 1);
  }

  // 2. Text tokens (the refiner uses the raw timestep) and the conditioning vector.
  expect_dims(in.timestep, "timestep", 1);
  expect_size(in.timestep, "timestep", 0, batch);
  expect_dims(in.pooled_projections, "pooled_projections", 2);
  expect_size(in.pooled_projections, "pooled_projections", 1, c.pooled_projection_dim);
  if (c.guidance_embeds) {
    expect_dims(in.guidance, "guidance", 1);
    expect_size(in.guidance, "guidance", 0, batch);
  }
  const at::Tensor timestep = in.timestep.to(device_, at::kFloat);
  expect_dims(in.encoder_hidden_states, "encoder_hidden_states", 3);
  expect_size(in.encoder_hidden_states, "encoder_hidden_states", 2, c.text_embed_dim);
  const std::int64_t text_len = in.encoder_hidden_states.size(1);
  at::Tensor mask = in.encoder_attention_mask.defined()
                        ? in.encoder_attention_mask.to(device_).to(at::kBool)
                        : at::ones({batch, text_len}, at::TensorOptions(device_).dtype(at::kBool));
  expect_dims(mask, "encoder_attention_mask", 2);
  expect_size(mask, "encoder_attention_mask", 1, text_len);
  use(transformer::ModuleKind::kContextEmbedder);
  at::Tensor txt =
      transformer::forward(p_->context_embedder, prep(in.encoder_hidden_states), timestep, mask,
                           c.num_attention_heads, attention_query_chunk);

  use(transformer::ModuleKind::kTimeTextEmbed);
  at::Tensor temb = p_->timestep_embedder(timestep, dtype_);
  if (c.guidance_embeds)
    temb = temb + p_->guidance_embedder(in.guidance.to(device_, at::kFloat), dtype_);
  temb = temb + p_->text_embedder(prep(in.pooled_projections));

  if (c.has_image_proj) {
    expect_dims(in.image_embeddings, "image_embeddings", 3);
    expect_size(in.image_embeddings, "image_embeddings", 2, c.image_proj_dim);
    use(transformer::ModuleKind::kImageProjection);
    const at::Tensor extra = p_->image_projection(prep(in.image_embeddings));
    // In front of the text: the text's padding stays at the end.
    txt = at::cat({extra, txt}, 1);
    mask = at::cat({at::ones({batch, extra.size(1)}, mask.options()), mask}, 1);
  }

  // 3. Text padding. Batch 1: crop to the mask's length (FramePack), no mask needed. Larger
  //    batches: crop to the longest real extent and mask padded keys (what varlen attention does
  //    for every real token).
  transformer::BlockContext ctx;
  ctx.heads = c.num_attention_heads;
  ctx.query_chunk = attention_query_chunk;
  ctx.rope = freqs;
  if (batch == 1) {
    txt = txt.narrow(1, 0, mask.sum().item<std::int64_t>());
  } else {
    const at::Tensor pos = at::arange(1, mask.size(1) + 1, mask.options().dtype(at::kLong));
    const std::int64_t extent = (mask.to(at::kLong) * pos).max().item<std::int64_t>();
    txt = txt.narrow(1, 0, extent);
    ctx.key_mask =
        at::cat({at::ones({batch, img.size(1)}, mask.options()), mask.narrow(1, 0, extent)}, 1)
            .view({batch, 1, 1, -1});
  }

  // 4. The blocks (or a cache's reuse of their last residual).
  //    (TeaCache's test reads block 0's weights.)
  const bool tea = tea_.enabled && !p_->dual.empty();
  const bool mag = !tea && mag_.decision.enabled;
  if (tea) use(transformer::ModuleKind::kDualBlock);
  bool reuse = false;
  if (tea) {
    reuse = !teacache_should_compute(img, temb);
  } else if (mag) {
    if (mag_.decision.step == 0) mag_.previous_residual = at::Tensor();  // a new section
    reuse = magcache_should_skip(mag_.decision);
    const at::Tensor& res = mag_.previous_residual;
    reuse = reuse && res.defined() && res.sizes() == img.sizes();
  }
  ++(reuse ? reused_calls_ : computed_calls_);
  if (reuse) {
    img = img + (tea ? tea_.previous_residual : mag_.previous_residual);
  } else {
    const at::Tensor before = img;
    int i = first_block_;
    for (const auto& b : p_->dual) {
      if (before_module) before_module(i);
      ++i;
      std::tie(img, txt) = transformer::forward(b, img, txt, temb, ctx);
    }
    for (const auto& b : p_->single) {
      if (before_module) before_module(i);
      ++i;
      std::tie(img, txt) = transformer::forward(b, img, txt, temb, ctx);
    }
    if (tea) tea_.previous_residual = img - before;
    if (mag) mag_.previous_residual = img - before;
  }

  // 5. Output: only the noisy latents' tokens, projected in float32, un-patchified.
  const std::int64_t n_out = frames * height * width;
  img = img.narrow(1, img.size(1) - n_out, n_out);
  use(transformer::ModuleKind::kNormOut);
  const auto mod = p_->norm_out(at::silu(temb.unsqueeze(-2))).chunk(2, -1);  // scale, shift
  img = at::layer_norm(img, {img.size(-1)}, {}, {}, 1e-6) * (1 + mod[0]) + mod[1];
  use(transformer::ModuleKind::kProjOut);
  const at::Tensor out = p_->proj_out(img.to(at::kFloat));
  return out.view({batch, frames, height, width, c.out_channels, pt, ps, ps})
      .permute({0, 4, 1, 5, 2, 6, 3, 7})
      .reshape({batch, c.out_channels, frames * pt, height * ps, width * ps});
}

namespace {

// Scaled float8 checkpoints store values divided by a per-tensor scale, kept as an extra tensor:
// computing with the values alone would be silently wrong, so they are refused by name.
void refuse_scaled_float8(const io::TensorStore& store) {
  for (const std::string& n : store.names())
    for (const char* suffix : {".scale_weight", ".weight_scale", ".scale_input", ".input_scale"}) {
      if (io::ends_with(n, suffix))
        throw Error(store.description() + ": tensor \"" + n +
                    "\" is a float8 scale: scaled float8 checkpoints are not supported (use "
                    "the plain fp8_e4m3fn or the bf16 checkpoint)");
    }
}

}  // namespace

std::shared_ptr<PackedTransformer> load_transformer(const std::string& folder, at::ScalarType dtype,
                                                    at::Device device, Conversion conversion,
                                                    const TransformerLoras& loras,
                                                    std::shared_ptr<const io::TensorStore> store) {
  const std::string config_path = folder + "/config.json";
  const nlohmann::json j = io::read_json_file(config_path, "the transformer config");
  TransformerConfig cfg;
  try {
    cfg = TransformerConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  if (!store) store = std::make_shared<const io::TensorStore>(io::TensorStore::open(folder));
  refuse_scaled_float8(*store);
  const std::vector<std::string> problems = check_specs(*store, transformer_parameter_specs(cfg));
  if (!problems.empty()) {
    std::string msg = store->description() + " does not match " + config_path + ":";
    for (const std::string& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  if (conversion == Conversion::kAtUse) device = at::kCPU;
  Weights weights(store, dtype, device, "", conversion);
  if (loras.patch)
    weights = weights.with_lora(loras.patch);
  else if (!loras.files.empty())
    weights = weights.with_lora(std::make_shared<const LoraPatch>(
        build_lora_patch(loras.files, *store, loras.reports, loras.options)));
  return std::make_shared<PackedTransformer>(cfg, weights);
}

}  // namespace framesmith
