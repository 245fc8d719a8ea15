#include "framesmith/error.h"
#include "io/safetensors.h"
#include "pipeline/conditioning.h"

namespace framesmith::pipeline {
namespace {

at::Tensor need(const io::SafeTensorsFile& f, const char* name, int64_t rank) {
  if (!f.has(name)) throw Error(f.path() + ": conditioning file has no tensor \"" + name + "\"");
  at::Tensor t = f.tensor(name).clone();
  if (t.dim() != rank)
    throw Error(f.path() + ": tensor \"" + name + "\" must have " + std::to_string(rank) +
                " dimensions, has " + std::to_string(t.dim()));
  return at::isFloatingType(t.scalar_type()) ? t.to(at::kFloat) : t;
}

}  // namespace

sampling::HunyuanConditioning load_conditioning(const std::string& path) {
  auto f = io::SafeTensorsFile::open(path);
  sampling::HunyuanConditioning c;
  c.positive.embeds = need(*f, kLlamaVec, 3);
  c.positive.mask = need(*f, kLlamaMask, 2).to(at::kLong);
  c.positive.poolers = need(*f, kClipPooler, 2);
  if (c.positive.mask.size(1) != c.positive.embeds.size(1))
    throw Error(path + ": llama_attention_mask length differs from llama_vec's");
  if (f->has(kLlamaVecNeg)) {
    c.negative.embeds = need(*f, kLlamaVecNeg, 3);
    c.negative.mask = need(*f, kLlamaMaskNeg, 2).to(at::kLong);
    c.negative.poolers = need(*f, kClipPoolerNeg, 2);
    if (c.negative.embeds.size(2) != c.positive.embeds.size(2))
      throw Error(path + ": negative and positive embeddings differ in width");
  } else {
    // As FramePack with CFG 1: the negative conditioning is zeros of the positive's shape.
    c.negative.embeds = at::zeros_like(c.positive.embeds);
    c.negative.mask = at::zeros_like(c.positive.mask);
    c.negative.poolers = at::zeros_like(c.positive.poolers);
  }
  if (f->has(kImageEmbeddings)) c.image_embeddings = need(*f, kImageEmbeddings, 3);
  return c;
}

void save_conditioning(const std::string& path, const sampling::HunyuanConditioning& c) {
  std::vector<std::pair<std::string, at::Tensor>> t = {{kLlamaVec, c.positive.embeds},
                                                       {kLlamaMask, c.positive.mask},
                                                       {kClipPooler, c.positive.poolers}};
  if (c.negative.embeds.defined()) {
    t.emplace_back(kLlamaVecNeg, c.negative.embeds);
    t.emplace_back(kLlamaMaskNeg, c.negative.mask);
    t.emplace_back(kClipPoolerNeg, c.negative.poolers);
  }
  if (c.image_embeddings.defined()) t.emplace_back(kImageEmbeddings, c.image_embeddings);
  io::save_safetensors(path, t, {{"framesmith", "conditioning"}});
}

}  // namespace framesmith::pipeline
