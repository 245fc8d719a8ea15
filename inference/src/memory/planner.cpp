#include "memory/planner.h"

#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "compat/torch_compat.h"
#include "framesmith/error.h"
#include "framesmith/model_set.h"
#include "framesmith/units.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "models/llama.h"

namespace framesmith::memory {

namespace {

constexpr double kEstimateMargin = 1.1;  // on top of the profile's correction

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

std::int64_t numel_of(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

// Elements of every tensor in a checkpoint.
std::int64_t stored_elements(const io::TensorStore& store) {
  std::int64_t n = 0;
  for (const std::string& name : store.names()) n += numel_of(store.info(name).shape);
  return n;
}

// ... of a component folder (0 when the folder has no readable checkpoint).
std::int64_t stored_elements(const std::string& folder) {
  try {
    return stored_elements(io::TensorStore::open(folder));
  } catch (const Error&) {
    return 0;
  }
}

// Elements of the two largest consecutive modules of the LLaMA in `store`, its modules taken in
// execution order (embed_tokens, layers.0 .. layers.L-1, norm) as the text encoder's streaming
// holds them: the one running and the next, prefetched. The embedding table is never placed (the
// streamed LLaMA converts at use and gathers the prompt's rows, LlamaModel::embed), so it is left
// out: counted, it added LLaMA 3 8B's 128256 x 4096 table (1 GB in fp16) to the
// estimate. 0 when the checkpoint cannot say.
std::int64_t llama_stream_elements(const io::TensorStore& store) {
  try {
    const std::string prefix = detect_llama_prefix(store);
    std::map<std::int64_t, std::int64_t> modules;  // module index -> elements (norm: -1 for now)
    for (const std::string& name : store.names()) {
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string key = name.substr(prefix.size());
      const std::int64_t n = numel_of(store.info(name).shape);
      if (key.rfind("layers.", 0) == 0) {
        modules[std::stoll(key.substr(7, key.find('.', 7) - 7)) + 1] += n;
      } else if (key.rfind("norm.", 0) == 0) {
        modules[-1] += n;
      }
    }
    if (modules.count(-1)) {
      const std::int64_t norm = modules[-1];
      modules.erase(-1);
      modules[modules.empty() ? 0 : modules.rbegin()->first + 1] += norm;
    }
    std::int64_t best = 0;
    for (const auto& [i, n] : modules) {
      const auto next = modules.find(i + 1);
      best = std::max(best, n + (next != modules.end() ? next->second : 0));
    }
    return best;
  } catch (const std::exception&) {
    return 0;
  }
}

// An integer field of a transformers config, at the top or under text_config / vision_config.
std::int64_t config_int(const std::string& folder, const char* key, std::int64_t fallback) {
  try {
    const nlohmann::json j = io::read_json_file(folder + "/config.json", "the config");
    for (const char* sub : {"", "text_config", "vision_config"}) {
      const nlohmann::json o = *sub ? (j.contains(sub) ? j[sub] : nlohmann::json()) : j;
      if (o.is_object() && o.contains(key) && o[key].is_number_integer())
        return o[key].get<std::int64_t>();
    }
  } catch (const Error&) {
  }
  return fallback;
}

std::string decode_setting(const DecodeRung& r) {
  std::string s = "chunk " + std::to_string(r.latent_frames) + " latent frame" +
                  (r.latent_frames == 1 ? "" : "s");
  if (r.row_bands > 1) s += " in " + std::to_string(r.row_bands) + " row bands";
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Footprint

ModelFootprint read_model_footprint(const std::string& model_dir, bool cuda) {
  return read_model_footprint(locate_model_set(model_dir), cuda);
}

std::string default_profile_path(bool cuda) {
  if (const char* p = std::getenv("FRAMESMITH_MEMORY_PROFILE")) return p;
  if (!cuda) return "";
  std::string base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    base = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.cache";
  else
    return "";
  const std::string dir = base + "/framesmith";
  std::error_code ignored;  // no folder, no profile: save() then fails quietly
  std::filesystem::create_directories(dir, ignored);
  return dir + "/memory-profile.json";
}

namespace {

// The block a transformer key belongs to in execution order (transformer_blocks.N: N,
// single_transformer_blocks.N: dual blocks + N), -1 for the embedders and the output.
int block_index(const std::string& name, const TransformerConfig& cfg) {
  const auto number_after = [&](const std::string& prefix) -> int {
    if (name.rfind(prefix, 0) != 0) return -1;
    const std::size_t end = name.find('.', prefix.size());
    const std::string digits = name.substr(prefix.size(), end - prefix.size());
    if (digits.empty() || digits.size() > 6 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return -1;
    return std::stoi(digits);
  };
  const int dual = number_after("transformer_blocks.");
  if (dual >= 0) return dual;
  const int single = number_after("single_transformer_blocks.");
  return single >= 0 ? static_cast<int>(cfg.num_layers) + single : -1;
}

}  // namespace

ModelFootprint read_model_footprint(const ModelSet& set, bool cuda) {
  ModelFootprint m;
  m.transformer_element_bytes = cuda ? 2 : 4;
  m.vae_element_bytes = cuda ? 2 : 4;
  m.encoder_element_bytes = cuda ? 2 : 4;
  m.cpu_convolution = !cuda;
  if (const ComponentPath* p = set.find(Component::kTransformer)) {
    m.transformer =
        TransformerConfig::from_json(io::read_json_file(p->path + "/config.json", "the config"));
    m.has_transformer = true;
    const io::TensorStore store = io::TensorStore::open(p->path);
    m.transformer_blocks =
        static_cast<int>(m.transformer.num_layers + m.transformer.num_single_layers);
    m.transformer_block_sizes.assign(static_cast<std::size_t>(m.transformer_blocks), 0);
    for (const std::string& name : store.names()) {
      const std::int64_t bytes = numel_of(store.info(name).shape) * m.transformer_element_bytes;
      const int block = block_index(name, m.transformer);
      if (block < 0) {
        m.transformer_non_block_bytes += bytes;
        continue;
      }
      m.transformer_block_bytes += bytes;
      if (block < m.transformer_blocks)
        m.transformer_block_sizes[static_cast<std::size_t>(block)] += bytes;
    }
    m.transformer_host_bytes = static_cast<std::int64_t>(store.total_bytes());
  }
  if (const ComponentPath* p = set.find(Component::kVae)) {
    m.vae = VaeConfig::from_json(io::read_json_file(p->path + "/config.json", "the config"));
    m.has_vae = true;
    const at::ScalarType dtype = cuda ? at::kHalf : at::kFloat;
    m.vae_decoder_bytes = decoder_weight_bytes(m.vae, dtype);
    std::int64_t all = 0;
    for (const ParamSpec& s : vae_parameter_specs(m.vae)) all += numel_of(s.shape);
    m.vae_encoder_bytes = all * m.vae_element_bytes - m.vae_decoder_bytes;
  }
  // `bytes` null: the caller reads the checkpoint itself (the LLaMA's, below, opened once).
  const auto encoder = [&](Component c, std::int64_t* bytes, std::int64_t& hidden,
                           std::int64_t& heads) {
    if (const ComponentPath* p = set.find(c)) {
      if (bytes) *bytes = stored_elements(p->path) * m.encoder_element_bytes;
      hidden = config_int(p->path, "hidden_size", hidden);
      heads = config_int(p->path, "num_attention_heads", heads);
    }
  };
  encoder(Component::kTextEncoder, nullptr, m.text_hidden, m.text_heads);
  encoder(Component::kTextEncoder2, &m.text_encoder_2_bytes, m.clip_hidden, m.clip_heads);
  encoder(Component::kImageEncoder, &m.image_encoder_bytes, m.image_hidden, m.image_heads);
  if (const ComponentPath* p = set.find(Component::kImageEncoder)) {
    const std::int64_t size = config_int(p->path, "image_size", 0);
    const std::int64_t patch = config_int(p->path, "patch_size", 0);
    if (size > 0 && patch > 0) m.image_tokens = (size / patch) * (size / patch);
    m.image_pixels = size * size;
  }
  if (const ComponentPath* p = set.find(Component::kTextEncoder)) {
    try {
      const io::TensorStore store = io::TensorStore::open(p->path);
      m.text_encoder_bytes = stored_elements(store) * m.encoder_element_bytes;
      m.text_encoder_stream_bytes = llama_stream_elements(store) * m.encoder_element_bytes;
      m.text_encoder_host_bytes = static_cast<std::int64_t>(store.total_bytes());
    } catch (const Error&) {
      // Unreadable: all three stay 0 (unknown).
    }
  }
  m.fingerprint = "t" + std::to_string(m.transformer.inner_dim()) + "x" +
                  std::to_string(m.transformer_blocks) + "-v" +
                  std::to_string(m.has_vae ? m.vae.block_out_channels.front() : 0) + "x" +
                  std::to_string(m.has_vae ? m.vae.block_out_channels.back() : 0);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Job shape

JobShape job_shape_for(const ModelFootprint& model) {
  JobShape job;
  if (model.image_tokens > 0) job.image_tokens = model.image_tokens;
  return job;
}

std::int64_t JobShape::max_decode_latents() const {
  const std::int64_t total = std::int64_t{sections} * latent_window + 1;
  return std::min<std::int64_t>(total, 2 * std::int64_t{latent_window} + 1);
}

std::int64_t JobShape::sampling_tokens(const TransformerConfig& cfg) const {
  const std::int64_t lh = height / 8, lw = width / 8,
                     ps = std::max<std::int64_t>(1, cfg.patch_size);
  std::int64_t n = std::int64_t{latent_window} * (lh / ps) * (lw / ps);
  if (cfg.has_clean_x_embedder)
    n += 2 * (lh / 2) * (lw / 2) + ceil_div(lh, 4) * ceil_div(lw, 4) +
         4 * ceil_div(lh, 8) * ceil_div(lw, 8);
  n += text_tokens + (cfg.has_image_proj ? image_tokens : 0);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Estimates

std::vector<std::int64_t> block_sizes(const ModelFootprint& m) {
  if (!m.transformer_block_sizes.empty()) return m.transformer_block_sizes;
  const int n = std::max(1, m.transformer_blocks);
  return std::vector<std::int64_t>(static_cast<std::size_t>(n),
                                   ceil_div(m.transformer_block_bytes, n));
}

AttentionKernel attention_kernel_for(bool cuda) {
  if (!FRAMESMITH_HAS_SDPA) return AttentionKernel::kChunked;
  if (cuda) return AttentionKernel::kFusedCuda;
  return FRAMESMITH_HAS_FUSED_CPU_SDPA ? AttentionKernel::kFusedCpu : AttentionKernel::kChunked;
}

namespace {

// The CPU flash kernel's per-thread buffer (ATen's FlashAttentionKernel.cpp): float32 scores of
// one query block x one key block, the block's running max and sum, and its output accumulator;
// a second scores buffer in the input dtype for bf16/f16 inputs. Block sizes as ATen picks them.
std::int64_t cpu_flash_workspace(std::int64_t queries, std::int64_t keys, std::int64_t head_dim,
                                 std::int64_t e) {
  const std::int64_t q_block =
      std::min<std::int64_t>(queries, queries >= 768 ? 256 : (queries >= 192 ? 64 : 32));
  const std::int64_t kv_block = std::min<std::int64_t>(keys, 512);
  std::int64_t per_thread = (q_block * kv_block + 2 * q_block + q_block * head_dim) * 4;
  if (e < 4) per_thread += q_block * kv_block * e;
  return std::max(1, at::get_num_threads()) * per_thread;
}

// Whether the attention calls of the estimated pass carry a mask (the token refiner's padded
// text) or not (the blocks at batch 1, where the text is cropped to its real length).
enum class AttentionMask { kNone, kPerQuery };

std::int64_t sampling_activations(const TransformerConfig& cfg, std::int64_t tokens, std::int64_t e,
                                  std::int64_t attention_chunk, AttentionKernel attention,
                                  int step_cache_tensors, AttentionMask mask) {
  const std::int64_t d = cfg.inner_dim(), mlp = cfg.mlp_dim(), heads = cfg.num_attention_heads;
  const std::int64_t rows = std::min(attention_chunk, tokens);
  // A single block holds the most (transformer_blocks.cpp), at one of two points; measured at the
  // 13B model's widths with `bench sampling-peak` (docs/benchmarks.md), these per-token counts of
  // hidden-sized (d) and MLP-sized activations are within 3 % of the measured peaks.
  //  - its output: the residual, the modulated input, the MLP's hidden layer, the attention
  //    output, the [attention, MLP] concatenation and the projection with its gating and sum;
  const std::int64_t at_output = tokens * (9 * d + 2 * mlp) * e;
  //  - its attention: the residual, the modulated input, the MLP's hidden layer, q, k, v and
  //    their RoPE'd copies, the output so far; plus what the kernel itself holds.
  std::int64_t at_attention = tokens * (8 * d + mlp) * e;
  if (attention == AttentionKernel::kChunked) {
    // One block of float32 scores and their softmax, the block's output; low-precision k and v
    // widened to float32 once (models/attention.cpp). The mask is applied in place.
    at_attention += 2 * heads * rows * tokens * 4 + rows * d * 4;
    if (e < 4) at_attention += 2 * tokens * d * 4;
  } else {
    // The fused kernels: per call (one per block of queries) the block's own output when there
    // is more than one, and its float32 log-sum-exp per head; the CPU flash kernel's blocks.
    at_attention += (rows < tokens ? rows * d * e : 0) + heads * rows * 4;
    if (attention == AttentionKernel::kFusedCpu)
      at_attention += cpu_flash_workspace(rows, tokens, cfg.attention_head_dim, e);
    // SDPA turns a bool mask into an additive one in the inputs' dtype, one (queries x keys)
    // per call (shared by the heads): measured exactly so on LibTorch 2.14's CPU kernel.
    if (mask == AttentionMask::kPerQuery) at_attention += rows * tokens * e;
  }
  // A step cache keeps the previous step's residual (and TeaCache block 0's modulated input).
  const std::int64_t kept = step_cache_tensors * tokens * d * e;
  return kept + std::max(at_output, at_attention);
}

}  // namespace

std::int64_t estimate_sampling_activations(const TransformerConfig& cfg, std::int64_t tokens,
                                           std::int64_t e, std::int64_t attention_chunk,
                                           AttentionKernel attention, int step_cache_tensors,
                                           std::int64_t padded_text_tokens) {
  const std::int64_t blocks = sampling_activations(cfg, tokens, e, attention_chunk, attention,
                                                   step_cache_tensors, AttentionMask::kNone);
  if (padded_text_tokens <= tokens) return blocks;
  // The token refiner runs on the padded text with its mask before the blocks crop it: for a
  // short video of a small model that can be the step's peak (the tiny model's, 20x its blocks').
  return std::max(blocks, sampling_activations(cfg, padded_text_tokens, e, attention_chunk,
                                               attention, false, AttentionMask::kPerQuery));
}

std::int64_t estimate_vae_encode_activations(const VaeConfig& cfg, std::int64_t height,
                                             std::int64_t width, std::int64_t e, bool cpu) {
  const std::int64_t c0 = cfg.block_out_channels.front(), positions = height * width;
  // Full-resolution stage of one frame: the causal padding makes 3 frames of input.
  std::int64_t bytes = 8 * c0 * positions * e;
  if (cpu) {
    // LibTorch's CPU convolutions: oneDNN's (large enough float32 inputs) or the fallback's
    // column buffer (27 taps of the input channels), and one more stage-sized tensor. Measured on
    // the full-size VAE (docs/benchmarks.md section 9): within 5 % at 32-48 px (fallback) and at
    // 96-384 px (oneDNN); 64 px peaks 10 MB higher than this.
    const bool onednn = e == 4 && c0 * 3 * height > 20480;
    bytes += c0 * positions * e + (onednn ? 3 * c0 * positions * e : 27 * c0 * positions * 4);
  }
  return bytes;
}

std::int64_t estimate_encoder_activations(std::int64_t tokens, std::int64_t hidden,
                                          std::int64_t heads, std::int64_t e) {
  // A transformer layer's hidden states, MLP (~4x) and its attention scores (and softmax).
  return tokens * hidden * e * 24 + 2 * heads * tokens * tokens * 4;
}

// ---------------------------------------------------------------------------------------------
// PhasePlan / MemoryPlan

std::string PhasePlan::line() const {
  std::string s = phase + ": " + setting + ", est. " + format_size(double(estimate)) + " peak";
  if (budget > 0) s += " of " + format_size(double(budget)) + " budget";
  if (!fits) s += " (does not fit)";
  return s;
}

Event PhasePlan::event(double t_s) const {
  Event e;
  e.type = EventType::kPlan;
  e.t_s = t_s;
  e.phase = phase;
  e.numbers["estimate"] = double(estimate);
  if (budget > 0) e.numbers["budget"] = double(budget);
  e.texts["setting"] = setting;
  e.texts["line"] = line();
  e.texts["fits"] = fits ? "yes" : "no";
  return e;
}

const PhasePlan* MemoryPlan::find(const std::string& phase) const {
  for (const PhasePlan& p : phases)
    if (p.phase == phase) return &p;
  return nullptr;
}

std::string MemoryPlan::text() const {
  std::string s = "residency: " + residency +
                  (budget > 0 ? " (budget " + format_size(double(budget)) + ")" : "") + "\n";
  for (const PhasePlan& p : phases) s += p.line() + "\n";
  if (host_bytes > 0)
    s += "host memory for decoding: about " + format_size(double(host_bytes)) + "\n";
  return s;
}

std::string profile_key(const std::string& device_kind, const std::string& phase,
                        const ModelFootprint& model) {
  return device_kind + "/" + phase + "/" + model.fingerprint;
}

// ---------------------------------------------------------------------------------------------
// PeakProfile

PeakProfile PeakProfile::load(const std::string& path) {
  PeakProfile p;
  if (path.empty()) return p;
  try {
    const nlohmann::json j = io::read_json_file(path, "the memory profile");
    if (!j.contains("entries") || !j["entries"].is_object()) return p;
    for (const auto& [key, v] : j["entries"].items()) {
      Entry e;
      e.ratio = v.value("ratio", 1.0);
      e.samples = v.value("samples", std::int64_t{0});
      e.last_estimate = v.value("last_estimate", std::int64_t{0});
      e.last_measured = v.value("last_measured", std::int64_t{0});
      if (std::isfinite(e.ratio) && e.ratio > 0) p.entries_[key] = e;
    }
  } catch (const std::exception&) {
    return PeakProfile();
  }
  return p;
}

void PeakProfile::save(const std::string& path) const {
  if (path.empty()) return;
  nlohmann::json j;
  j["version"] = 1;
  j["what"] = "Framesmith memory profile: measured / estimated device peak per phase";
  j["entries"] = nlohmann::json::object();
  for (const auto& [key, e] : entries_)
    j["entries"][key] = {{"ratio", e.ratio},
                         {"samples", e.samples},
                         {"last_estimate", e.last_estimate},
                         {"last_measured", e.last_measured}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    out << j.dump(2) << "\n";
    if (!out) return;
  }
  std::rename(tmp.c_str(), path.c_str());
}

double PeakProfile::correction(const std::string& key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return 1.0;
  return std::clamp(it->second.ratio, 0.5, 8.0);
}

void PeakProfile::record(const std::string& key, std::int64_t estimate, std::int64_t measured) {
  if (estimate <= 0 || measured <= 0) return;
  const double observed = double(measured) / double(estimate);
  Entry& e = entries_[key];
  // The largest recent ratio wins; older ones fade so that one odd run does not stick forever.
  e.ratio = e.samples == 0 ? observed : std::max(observed, 0.8 * e.ratio + 0.2 * observed);
  ++e.samples;
  e.last_estimate = estimate;
  e.last_measured = measured;
}

// ---------------------------------------------------------------------------------------------
// The plan

MemoryPlan make_memory_plan(const ModelFootprint& m, const JobShape& job, std::int64_t budget,
                            const ResidencyLimits& limits, const PeakProfile& profile,
                            const std::string& device_kind, AttentionKernel attention) {
  MemoryPlan plan;
  plan.budget = std::max<std::int64_t>(0, budget);
  const bool bounded = plan.budget > 0;
  const bool high = bounded && plan.budget > limits.high_vram_threshold;
  plan.residency = !bounded ? "cpu" : high ? "high-vram" : "low-vram";
  const auto corrected = [&](const std::string& phase, std::int64_t estimate) {
    const double f = profile.correction(profile_key(device_kind, phase, m)) * kEstimateMargin;
    return static_cast<std::int64_t>(std::ceil(double(estimate) * f));
  };
  const auto add = [&](std::string phase, std::string setting, std::int64_t estimate) {
    PhasePlan p;
    p.phase = std::move(phase);
    p.setting = std::move(setting);
    p.estimate = estimate;
    p.budget = plan.budget;
    p.fits = !bounded || estimate <= plan.budget;
    plan.phases.push_back(p);
    return &plan.phases.back();
  };
  const std::int64_t ee = m.encoder_element_bytes;

  // Text. High-VRAM: LLaMA and CLIP resident. Low-VRAM: CLIP whole, the LLaMA streamed per layer,
  // which holds two of its modules at once (two layers: one runs while the next is prefetched;
  // the embedding table stays on the host), dropped before CLIP runs. Without the
  // module sizes (a footprint not read from a model folder) the whole LLaMA is counted.
  {
    const std::int64_t llama_act = corrected(
        "text", estimate_encoder_activations(job.text_tokens, m.text_hidden, m.text_heads, ee));
    const std::int64_t clip_act =
        corrected("text", estimate_encoder_activations(77, m.clip_hidden, m.clip_heads, ee));
    const std::int64_t llama = m.text_encoder_bytes + llama_act;
    const std::int64_t clip = m.text_encoder_2_bytes + clip_act;
    const bool stream = bounded && !high;
    std::int64_t est = std::max(llama, clip);
    std::string setting = "LLaMA, then CLIP, each whole";
    if (high) {
      est = llama + clip;
      setting = "LLaMA and CLIP resident";
    } else if (stream) {
      const std::int64_t streamed =
          m.text_encoder_stream_bytes > 0 ? m.text_encoder_stream_bytes : m.text_encoder_bytes;
      est = m.text_encoder_2_bytes + std::max(streamed + llama_act, clip_act);
      setting = "LLaMA streamed per layer, CLIP whole";
    }
    PhasePlan* p = add("text", setting, est);
    if (!p->fits) p->setting += "; on the CPU instead";
  }
  // Image: SigLIP whole. Besides its layers: the preprocessed picture (float32) on the device and
  // the patch embedding's input in the encoder's dtype (on the CPU its im2col columns, the same
  // size): at 384 px 3.4 MB, next to 816 MB of weights, but half the tiny model's peak.
  {
    const std::int64_t pixels = 3 * m.image_pixels * (4 + ee);
    const std::int64_t est =
        m.image_encoder_bytes + pixels +
        corrected("image", estimate_encoder_activations(job.image_tokens, m.image_hidden,
                                                        m.image_heads, ee));
    PhasePlan* p = add("image", "SigLIP whole", est);
    if (!p->fits) p->setting += "; on the CPU instead";
  }
  // VAE encode of the start image: the VAE whole.
  if (m.has_vae) {
    const std::int64_t est = m.vae_encoder_bytes + m.vae_decoder_bytes +
                             corrected("vae encode", estimate_vae_encode_activations(
                                                         m.vae, job.height, job.width,
                                                         m.vae_element_bytes, m.cpu_convolution));
    PhasePlan* p = add("vae encode", "VAE whole", est);
    if (!p->fits) p->setting += "; on the CPU instead";
  }
  // Sampling: resident blocks and the attention block size.
  std::int64_t resident_bytes_sampling = 0;
  if (m.has_transformer) {
    const std::vector<std::int64_t> sizes = block_sizes(m);
    const int n = static_cast<int>(sizes.size());
    const std::int64_t tokens = job.sampling_tokens(m.transformer);
    // The first `res` blocks resident; the rest streamed, the running block and the next
    // prefetched on the device at once (the largest such pair).
    const auto resident_bytes = [&](int res) {
      return std::accumulate(sizes.begin(), sizes.begin() + res, std::int64_t{0});
    };
    const auto streamed_bytes = [&](int res) {
      std::int64_t pair = 0;
      for (int i = res; i < n; ++i)
        pair = std::max(pair, sizes[static_cast<std::size_t>(i)] +
                                  (i + 1 < n ? sizes[static_cast<std::size_t>(i + 1)] : 0));
      return pair;
    };
    int resident = n;
    if (bounded && !high) {
      const std::int64_t room =
          plan.budget - m.transformer_non_block_bytes - limits.preserved_memory;
      resident = 0;
      while (resident < n && resident_bytes(resident + 1) <= room) ++resident;
    }
    const auto estimate = [&](int res, std::int64_t chunk) {
      return m.transformer_non_block_bytes + resident_bytes(res) + streamed_bytes(res) +
             corrected("sampling", estimate_sampling_activations(
                                       m.transformer, tokens, m.transformer_element_bytes, chunk,
                                       attention, job.step_cache_tensors, job.padded_text_tokens));
    };
    std::int64_t chunk = 1024;
    std::int64_t est = estimate(resident, chunk);
    for (std::int64_t c : {256, 64}) {
      if (!bounded || est <= plan.budget) break;
      chunk = c;
      est = estimate(resident, chunk);
    }
    while (bounded && est > plan.budget && resident > 0) {
      resident /= 2;
      est = estimate(resident, chunk);
    }
    plan.resident_blocks = resident;
    plan.attention_chunk = chunk;
    resident_bytes_sampling = resident_bytes(resident);
    add("sampling",
        std::to_string(resident) + " of " + std::to_string(n) + " blocks resident" +
            (resident < n ? " (others streamed)" : "") + ", attention " + std::to_string(chunk),
        est);
  }
  // Decode: the largest chunk that fits next to what stays resident.
  if (m.has_vae) {
    DecodeShape shape;
    shape.latent_frames = job.max_decode_latents();
    shape.latent_height = job.height / m.vae.spatial_compression_ratio;
    shape.latent_width = job.width / m.vae.spatial_compression_ratio;
    shape.element_bytes = m.vae_element_bytes;
    shape.cpu_convolution = m.cpu_convolution;
    // What of the transformer stays on the device: low-VRAM offloads its modules (embedders and
    // output included, from the last one back) until the target is free (prepare_decode).
    std::int64_t resident_at_decode = m.transformer_non_block_bytes + resident_bytes_sampling;
    if (bounded && !high)
      resident_at_decode = std::min(
          resident_at_decode, std::max<std::int64_t>(0, plan.budget - limits.decode_free_target));
    const std::int64_t fixed = resident_at_decode + m.vae_decoder_bytes;
    std::vector<std::int64_t> estimates;
    for (const DecodeRung& r : default_decode_ladder()) {
      const std::int64_t est =
          corrected("decode", estimate_decode_peak(m.vae, shape, r, job.temporal_tiles));
      // A rung joins the ladder only when it needs less than the one before it (on the CPU,
      // LibTorch's small-input convolution path can make a smaller chunk need more).
      if (!estimates.empty() && est >= estimates.back()) continue;
      plan.decode_rungs.push_back(r);
      estimates.push_back(est);
    }
    plan.decode_rung = plan.decode_rungs.size() - 1;
    for (std::size_t i = 0; i < plan.decode_rungs.size(); ++i) {
      if (!bounded || fixed + estimates[i] <= plan.budget) {
        plan.decode_rung = i;
        break;
      }
    }
    add("decode", decode_setting(plan.decode_rungs[plan.decode_rung]),
        fixed + estimates[plan.decode_rung]);
    plan.host_bytes = estimate_decode_host_bytes(m.vae, shape, job.temporal_tiles);
  } else {
    plan.decode_rungs = default_decode_ladder();
  }
  return plan;
}

}  // namespace framesmith::memory
