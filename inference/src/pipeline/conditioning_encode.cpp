// Prompt and image conditioning as FramePack computes it (diffusers_helper/hunyuan.py
// encode_prompt_conds, clip_vision.py hf_clip_vision_encode, utils.crop_or_pad_yield_mask).
#include <cstring>
#include <list>
#include <mutex>
#include <optional>

#include "framesmith/error.h"
#include "image/image_prep.h"
#include "memory/simulated_device.h"
#include "models/clip_text.h"
#include "models/llama.h"
#include "models/siglip.h"
#include "pipeline/conditioning.h"
#include "pipeline/warm_models.h"
#include "text/tokenizer_clip.h"
#include "text/tokenizer_llama.h"

namespace framesmith::pipeline {
namespace {

// diffusers' HunyuanVideo DEFAULT_PROMPT_TEMPLATE, as FramePack uses it.
const char* kTemplatePrefix =
    "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video by detailing the following "
    "aspects: 1. The main content and theme of the video.2. The color, shape, size, texture, "
    "quantity, text, and spatial relationships of the objects.3. Actions, events, behaviors "
    "temporal relationships, physical movement changes of the objects.4. background environment, "
    "light, style and atmosphere.5. camera angles, movements, and transitions used in the "
    "video:<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n";
const char* kTemplateSuffix = "<|eot_id|>";
constexpr int kLlamaMaxLength = 256;  // FramePack's max_length (prompt tokens after the template)
constexpr int kPromptPad = 512;       // crop_or_pad_yield_mask length
constexpr int kClipLength = 77;

const ComponentPath& need(const ModelSet& m, Component c) {
  const ComponentPath* p = m.find(c);
  if (!p)
    throw Error(std::string("the model set has no ") + folder_name(c) + "/ (needed to encode " +
                (c == Component::kImageEncoder || c == Component::kFeatureExtractor
                     ? "the image"
                     : "the prompt") +
                "; real weights: " + hub_repo_for(c, TransformerVariant::kOriginal) + ")");
  return *p;
}

// FramePack's crop_or_pad_yield_mask: (1, F, C) -> (1, length, C) and a mask of the real rows.
std::pair<at::Tensor, at::Tensor> crop_or_pad(const at::Tensor& x, std::int64_t length) {
  const std::int64_t f = x.size(1);
  if (f >= length)
    return {x.slice(1, 0, length).contiguous(), at::ones({x.size(0), length}, at::kLong)};
  at::Tensor y = at::zeros({x.size(0), length, x.size(2)}, x.options());
  y.slice(1, 0, f).copy_(x);
  at::Tensor mask = at::zeros({x.size(0), length}, at::kLong);
  mask.slice(1, 0, f).fill_(1);
  return {y, mask};
}

at::Tensor ids_tensor(const std::vector<std::int64_t>& ids) {
  return at::tensor(ids, at::kLong).unsqueeze(0);
}

struct TextEncoders {
  std::string key;
  std::shared_ptr<text::LlamaTokenizer> llama_tok;
  std::shared_ptr<text::ClipTokenizer> clip_tok;
  std::shared_ptr<LlamaModel> llama;
  std::shared_ptr<ClipTextModel> clip;
  std::int64_t crop_start = 0;
  // What TextEncodeHooks::place_llama returned; declared last, so it lets go of the LLaMA first.
  std::shared_ptr<void> llama_placement;
};

struct Encoded {
  at::Tensor llama_vec, pooler;
};

// An encoder loaded for `device`. On the CPU its weights are host memory: the plain CPU's, or
// the simulated device's host copy, whose device bytes the governor's WeightReservation holds
// (counting the copy as well would count the weights twice). On CUDA they are the device's.
template <typename Load>
auto load_on(at::Device device, const Load& load) {
  std::optional<memory::HostScope> host;
  if (device.is_cpu()) host.emplace();
  return load();
}

TextEncoders load_text_encoders(const ModelSet& m, at::Device device,
                                const TextEncodeHooks& hooks) {
  TextEncoders t;
  const at::ScalarType dtype = device.is_cuda() ? at::kHalf : at::kFloat;
  t.llama_tok = std::make_shared<text::LlamaTokenizer>(
      text::LlamaTokenizer::from_file(need(m, Component::kTokenizer).path + "/tokenizer.json"));
  t.clip_tok = std::make_shared<text::ClipTokenizer>(
      text::ClipTokenizer::from_folder(need(m, Component::kTokenizer2).path));
  const std::string& llama_path = need(m, Component::kTextEncoder).path;
  if (hooks.place_llama) {
    {
      // The host keeps the weights, memory-mapped in the checkpoint's dtype (no converted host
      // copy: 8B in float32 would be 32 GB); the placement brings each layer onto the device in
      // the compute dtype at use.
      memory::HostScope host;
      t.llama = load_llama(llama_path, dtype, at::kCPU, Conversion::kAtUse);
    }
    t.llama->set_compute_device(device);
    t.llama_placement = hooks.place_llama(*t.llama);
  } else {
    // On the CPU the weights stay mapped too and each layer is converted as its forward runs
    // (the text encoder runs once or twice a job: the same conversions as at load, without the
    // whole converted copy); on a device the weights are converted onto it as they load.
    t.llama = load_on(device, [&] {
      return load_llama(llama_path, dtype, device,
                        device.is_cpu() ? Conversion::kAtUse : Conversion::kAtLoad);
    });
  }
  t.clip = load_on(device, [&] {
    return load_clip_text(need(m, Component::kTextEncoder2).path, dtype, device);
  });
  // HunyuanVideo's crop_start (95 with its tokenizer) is the template prefix's token count,
  // special tokens included; computing it keeps other tokenizers (the tiny model's) right.
  t.crop_start =
      static_cast<std::int64_t>(t.llama_tok->encode(kTemplatePrefix, 0, true, false).ids.size());
  return t;
}

// A float32 host copy of an encoder output (on the simulated device outside its budget), so that
// what the prompt cache keeps is nothing of the device.
at::Tensor host_float(const at::Tensor& t) {
  memory::HostScope host;
  return t.to(at::kCPU, at::kFloat, /*non_blocking=*/false, /*copy=*/true);
}

Encoded encode_prompt(const TextEncoders& t, const std::string& prompt) {
  const std::string templated = std::string(kTemplatePrefix) + prompt + kTemplateSuffix;
  const auto enc =
      t.llama_tok->encode(templated, static_cast<int>(kLlamaMaxLength + t.crop_start), true, true);
  std::int64_t length = 0;
  for (auto m : enc.attention_mask) length += m != 0;
  const at::Device dev = t.llama->device();
  at::Tensor ids = ids_tensor(enc.ids).to(dev);
  at::Tensor mask = ids_tensor(enc.attention_mask).to(dev);
  at::Tensor hidden = t.llama->hidden_state(ids, mask, -3);
  Encoded e;
  e.llama_vec = host_float(hidden.slice(1, t.crop_start, std::max(length, t.crop_start)));
  hidden = at::Tensor();
  const auto cenc = t.clip_tok->encode(prompt, kClipLength, true);
  e.pooler = host_float(t.clip->forward(ids_tensor(cenc.ids).to(dev)).pooler_output);
  return e;
}

// A small session cache: the same prompt with the same encoders is not encoded twice.
class PromptCache {
 public:
  bool get(const std::string& key, Encoded* out) {
    std::lock_guard<std::mutex> lock(mu_);
    const Encoded* e = find(key);
    if (e) *out = *e;
    return e != nullptr;
  }
  bool has(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return find(key) != nullptr;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.clear();
  }
  void put(const std::string& key, const Encoded& e) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.emplace_front(key, e);
    if (entries_.size() > kMaxEntries) entries_.pop_back();
  }

 private:
  const Encoded* find(const std::string& key) const {  // under mu_
    for (const auto& [k, v] : entries_)
      if (k == key) return &v;
    return nullptr;
  }
  static constexpr std::size_t kMaxEntries = 16;
  std::mutex mu_;
  std::list<std::pair<std::string, Encoded>> entries_;
};

PromptCache& prompt_cache() {
  static PromptCache cache;
  return cache;
}

}  // namespace

void clear_prompt_cache() {
  prompt_cache().clear();
}

namespace {

// Keyed on the compute device: where the weights live (whole or streamed) does not change the
// result, the device (and its dtype) does.
std::string prompt_cache_base(const ModelSet& models, at::Device device) {
  return need(models, Component::kTextEncoder).path + "|" +
         need(models, Component::kTextEncoder2).path + "|" + device.str() + "|";
}

}  // namespace

bool prompts_cached(const ModelSet& models, const std::string& prompt,
                    const std::string& negative_prompt, double cfg, at::Device device) {
  if (!models.find(Component::kTextEncoder) || !models.find(Component::kTextEncoder2)) return false;
  const std::string base = prompt_cache_base(models, device);
  return prompt_cache().has(base + prompt) &&
         (cfg == 1.0 || prompt_cache().has(base + negative_prompt));
}

namespace {

at::Tensor frames_hw3(const Frames& image, const char* what) {
  image::check_image_size(image.height, image.width, what);
  if (image.count < 1 || image.rgb.size() < std::size_t(image.width) * image.height * 3)
    throw Error(std::string("the ") + what + "'s pixel buffer is smaller than its size says");
  at::Tensor hw3 = at::empty({image.height, image.width, 3}, at::kByte);
  std::memcpy(hw3.data_ptr(), image.rgb.data(), static_cast<std::size_t>(hw3.numel()));
  return hw3;
}

}  // namespace

at::Tensor prepare_start_image(const Frames& image, int resolution) {
  const at::Tensor hw3 = frames_hw3(image, "start image");
  const image::Bucket b = image::find_nearest_bucket(image.height, image.width, resolution);
  return image::resize_and_center_crop(hw3, b.width, b.height);
}

at::Tensor vae_pixels(const at::Tensor& u8) {
  const at::Tensor thw3 = u8.dim() == 3 ? u8.unsqueeze(0) : u8;
  return thw3.to(at::kFloat).div(127.5).sub(1.0).permute({3, 0, 1, 2}).unsqueeze(0);
}

sampling::PromptConditioning blended_prompt(
    const std::vector<sampling::PromptConditioning>& prompts, const SectionPrompt& p) {
  const sampling::PromptConditioning& a = prompts.at(static_cast<std::size_t>(p.first));
  if (!p.blended()) return a;
  const sampling::PromptConditioning& b = prompts.at(static_cast<std::size_t>(p.second));
  const double w = p.weight;
  // FramePack-Studio: (1 - alpha) * previous + alpha * next; the previous prompt's mask.
  return {a.embeds * (1 - w) + b.embeds * w, a.mask, a.poolers * (1 - w) + b.poolers * w};
}

at::Tensor prepare_image_for(const Frames& image, std::int64_t width, std::int64_t height) {
  return image::resize_and_center_crop(frames_hw3(image, "end image"), width, height);
}

void encode_text(const ModelSet& models, const std::string& prompt,
                 const std::string& negative_prompt, double cfg, at::Device device,
                 sampling::HunyuanConditioning& out, const TextEncodeHooks& hooks) {
  std::vector<sampling::HunyuanConditioning> all;
  encode_texts(models, {prompt}, negative_prompt, cfg, device, all, hooks);
  out.positive = all.front().positive;
  out.negative = all.front().negative;
}

void encode_texts(const ModelSet& models, const std::vector<std::string>& prompts,
                  const std::string& negative_prompt, double cfg, at::Device device,
                  std::vector<sampling::HunyuanConditioning>& all, const TextEncodeHooks& hooks) {
  const std::string base = prompt_cache_base(models, device);
  std::shared_ptr<TextEncoders> enc;
  const bool warm = hooks.keep_warm && !hooks.place_llama;
  auto encode_cached = [&](const std::string& text) {
    Encoded e;
    if (prompt_cache().get(base + text, &e)) return e;
    if (!enc && warm) enc = warm_registry().find<TextEncoders>("text encoders", base);
    if (!enc) {
      enc = std::make_shared<TextEncoders>(load_text_encoders(models, device, hooks));
      // The LLaMA stays mapped (converted per layer as its forward runs: page cache only); CLIP
      // is converted at load.
      if (warm) {
        const io::TensorStore llama =
            io::TensorStore::open(need(models, Component::kTextEncoder).path);
        const io::TensorStore clip =
            io::TensorStore::open(need(models, Component::kTextEncoder2).path);
        const at::ScalarType dtype = device.is_cuda() ? at::kHalf : at::kFloat;
        warm_registry().keep("text encoders", base, enc,
                             need(models, Component::kTextEncoder).path + ", " +
                                 need(models, Component::kTextEncoder2).path,
                             converted_bytes(clip, dtype),
                             std::int64_t(llama.total_bytes() + clip.total_bytes()));
      }
    }
    e = encode_prompt(*enc, text);
    prompt_cache().put(base + text, e);
    return e;
  };
  all.clear();
  for (const std::string& prompt : prompts) {
    sampling::HunyuanConditioning out;
    const Encoded pos = encode_cached(prompt);
    auto [vec, mask] = crop_or_pad(pos.llama_vec, kPromptPad);
    out.positive = {vec, mask, pos.pooler};
    if (cfg == 1.0) {
      // FramePack: with CFG 1 the negative branch never runs; its conditioning is zeros.
      auto [nvec, nmask] = crop_or_pad(at::zeros_like(pos.llama_vec), kPromptPad);
      out.negative = {nvec, nmask, at::zeros_like(pos.pooler)};
    } else {
      const Encoded neg = encode_cached(negative_prompt);
      auto [nvec, nmask] = crop_or_pad(neg.llama_vec, kPromptPad);
      out.negative = {nvec, nmask, neg.pooler};
    }
    all.push_back(out);
  }
}

at::Tensor encode_image(const ModelSet& models, const at::Tensor& image_hw3, at::Device device) {
  const auto cfg = image::ImageProcessorConfig::load(
      need(models, Component::kFeatureExtractor).path + "/preprocessor_config.json");
  const at::Tensor pixels = image::preprocess_image(image_hw3, cfg);
  auto siglip = load_on(device, [&] {
    return load_siglip_vision(need(models, Component::kImageEncoder).path,
                              device.is_cuda() ? at::kHalf : at::kFloat, device);
  });
  return host_float(siglip->forward(pixels.to(device)));
}

}  // namespace framesmith::pipeline
