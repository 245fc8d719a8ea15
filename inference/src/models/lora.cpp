#include "models/lora.h"

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <tuple>

#include "framesmith/error.h"
#include "io/files.h"
#include "models/weights.h"

namespace framesmith {

const char* to_string(LoraLayout layout) {
  switch (layout) {
    case LoraLayout::kDiffusers:
      return "diffusers";
    case LoraLayout::kKohya:
      return "kohya";
    case LoraLayout::kHunyuan:
      return "hunyuan";
  }
  return "?";
}

namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

std::string underscored(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

// One LoRA module of a file: its two matrices and optional alpha, by the file's own stem.
struct Group {
  std::string down_key, up_key, alpha_key;
  bool kohya_names = false;  // lora_down / lora_up
};

// HunyuanVideo's original names → the packed model's (diffusers' conversion of them).
const std::vector<std::pair<std::string, std::vector<std::string>>>& double_block_names() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> t = {
      {"img_attn_qkv", {"attn.to_q", "attn.to_k", "attn.to_v"}},
      {"txt_attn_qkv", {"attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"}},
      {"img_attn_proj", {"attn.to_out.0"}},
      {"txt_attn_proj", {"attn.to_add_out"}},
      {"img_mlp.fc1", {"ff.net.0.proj"}},
      {"img_mlp.fc2", {"ff.net.2"}},
      {"txt_mlp.fc1", {"ff_context.net.0.proj"}},
      {"txt_mlp.fc2", {"ff_context.net.2"}},
      {"img_mod.linear", {"norm1.linear"}},
      {"txt_mod.linear", {"norm1_context.linear"}},
  };
  return t;
}

const std::vector<std::pair<std::string, std::vector<std::string>>>& single_block_names() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> t = {
      {"linear1", {"attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"}},
      {"linear2", {"proj_out"}},
      {"modulation.linear", {"norm.linear"}},
  };
  return t;
}

// "double_blocks.3.img_attn_qkv" (or with _ for . as kohya writes it) → its targets; empty when
// the stem is not an original HunyuanVideo block name.
std::vector<std::string> hunyuan_targets(const std::string& stem, bool underscores) {
  const char sep = underscores ? '_' : '.';
  for (const auto& [block, packed, table] :
       {std::make_tuple(std::string("double_blocks"), std::string("transformer_blocks"),
                        &double_block_names()),
        std::make_tuple(std::string("single_blocks"), std::string("single_transformer_blocks"),
                        &single_block_names())}) {
    const std::string head = block + sep;
    if (!starts_with(stem, head)) continue;
    std::size_t pos = head.size(), end = pos;
    while (end < stem.size() && std::isdigit(static_cast<unsigned char>(stem[end]))) ++end;
    if (end == pos || end >= stem.size() || stem[end] != sep) return {};
    const std::string index = stem.substr(pos, end - pos);
    const std::string rest = stem.substr(end + 1);
    for (const auto& [name, modules] : *table) {
      if (rest != (underscores ? underscored(name) : name)) continue;
      std::vector<std::string> out;
      for (const std::string& m : modules) out.push_back(packed + "." + index + "." + m);
      return out;
    }
    return {};
  }
  return {};
}

// A diffusers / PEFT / ComfyUI stem without the model prefix its writer put in front.
std::string without_model_prefix(const std::string& stem) {
  for (const char* p :
       {"base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer."})
    if (starts_with(stem, p)) return stem.substr(std::string(p).size());
  return stem;
}

// Whether a stem names an original HunyuanVideo block module (either spelling).
bool is_hunyuan_stem(const std::string& stem) {
  if (starts_with(stem, "lora_unet_")) return !hunyuan_targets(stem.substr(10), true).empty();
  return !hunyuan_targets(without_model_prefix(stem), false).empty();
}

class Mapper {
 public:
  explicit Mapper(const io::TensorStore& base) : base_(base) {
    for (const std::string& key : base.names()) {
      if (!io::ends_with(key, ".weight") || base.info(key).shape.size() != 2) continue;
      const std::string module = key.substr(0, key.size() - 7);
      by_underscores_.emplace(underscored(module), module);
    }
  }

  // The model modules a file's stem changes; empty when the model has none of that name.
  std::vector<std::string> targets(std::string stem, bool kohya, LoraLayout* layout) const {
    if (kohya) {
      for (const char* p : {"lora_unet_", "lora_transformer_"}) {
        if (!starts_with(stem, p)) continue;
        const std::string rest = stem.substr(std::string(p).size());
        if (auto h = hunyuan_targets(rest, true); !h.empty()) {
          *layout = LoraLayout::kHunyuan;
          return present(h);
        }
        *layout = LoraLayout::kKohya;
        if (const auto it = by_underscores_.find(rest); it != by_underscores_.end())
          return {it->second};
        return {};
      }
    }
    stem = without_model_prefix(stem);
    if (auto h = hunyuan_targets(stem, false); !h.empty()) {
      *layout = LoraLayout::kHunyuan;
      return present(h);
    }
    if (base_.has(stem + ".weight") && base_.info(stem + ".weight").shape.size() == 2)
      return {stem};
    return {};
  }

 private:
  std::vector<std::string> present(const std::vector<std::string>& modules) const {
    for (const std::string& m : modules)
      if (!base_.has(m + ".weight")) return {};
    return modules;
  }

  const io::TensorStore& base_;
  std::map<std::string, std::string> by_underscores_;
};

std::map<std::string, Group> group_keys(const io::SafeTensorsFile& file,
                                        std::vector<std::string>* unreadable) {
  static const std::vector<std::pair<std::string, int>> kSuffixes = {{".lora_A.weight", 0},
                                                                     {".lora_B.weight", 1},
                                                                     {".lora_down.weight", 2},
                                                                     {".lora_up.weight", 3},
                                                                     {".alpha", 4}};
  std::map<std::string, Group> groups;
  for (const std::string& key : file.names()) {
    bool known = false;
    for (const auto& [suffix, kind] : kSuffixes) {
      if (!io::ends_with(key, suffix)) continue;
      Group& g = groups[key.substr(0, key.size() - suffix.size())];
      if (kind == 0 || kind == 2) g.down_key = key;
      if (kind == 1 || kind == 3) g.up_key = key;
      if (kind == 2 || kind == 3) g.kohya_names = true;
      if (kind == 4) g.alpha_key = key;
      known = true;
      break;
    }
    if (!known) unreadable->push_back(key);
  }
  return groups;
}

// A LoRA matrix as float32, refused when damaged.
at::Tensor read_matrix(const io::SafeTensorsFile& file, const std::string& key, int dims) {
  at::Tensor t = file.tensor(key);
  if (!at::isFloatingType(t.scalar_type()))
    throw Error(file.path() + ": tensor \"" + key + "\" has dtype " + file.info(key).dtype +
                " (LoRA weights must be F32, F16 or BF16)");
  if (t.dim() != dims)
    throw Error(file.path() + ": tensor \"" + key + "\" has shape " + shape_str(t.sizes()) +
                (dims == 2 ? ", a matrix is expected" : ", a single number is expected"));
  t = t.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  if (!at::isfinite(t).all().item<bool>())
    throw Error(file.path() + ": tensor \"" + key +
                "\" holds NaN or infinite values: the LoRA file is damaged");
  return t;
}

std::string list_some(const std::vector<std::string>& names, std::size_t shown = 8) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i) s += "\n  " + names[i];
  if (names.size() > shown) s += "\n  ... and " + std::to_string(names.size() - shown) + " more";
  return s;
}

void check_strength(const LoraSpec& spec) {
  if (!std::isfinite(spec.strength) || std::abs(spec.strength) > kMaxLoraStrength) {
    std::ostringstream o;
    o << spec.path << ": LoRA strength " << spec.strength << " is outside ±" << kMaxLoraStrength
      << " (useful strengths lie between -2 and 2)";
    throw Error(o.str());
  }
}

// Maps one file into `patch`; fills `report`.
void add_file(const LoraSpec& spec, const Mapper& mapper, const io::TensorStore& base,
              const LoraOptions& options, LoraPatch& patch, LoraFileReport& report) {
  check_strength(spec);
  if (!io::is_file(spec.path)) throw Error(spec.path + ": no such LoRA file");
  io::refuse_pickle(spec.path);
  const auto file = io::SafeTensorsFile::open(spec.path);
  report.path = spec.path;
  report.strength = spec.strength;
  std::vector<std::string> unreadable;
  const std::map<std::string, Group> groups = group_keys(*file, &unreadable);
  if (groups.empty())
    throw Error(spec.path +
                ": no LoRA weights in it (expected lora_A/lora_B or lora_down/lora_up "
                "pairs; its keys:" +
                list_some(file->names()) + ")");
  if (!unreadable.empty())
    throw Error(spec.path + ": " + std::to_string(unreadable.size()) +
                " tensor(s) of a kind this reader does not apply (LyCORIS/LoHa/full-diff "
                "keys?), so the LoRA would be applied in part:" +
                list_some(unreadable));
  bool any_kohya = false, any_hunyuan = false;
  std::vector<std::pair<std::string, std::vector<std::string>>> matched;
  for (const auto& [stem, g] : groups) {
    if (g.down_key.empty() || g.up_key.empty())
      throw Error(spec.path + ": LoRA module \"" + stem + "\" has " +
                  (g.down_key.empty() ? "an up matrix but no down matrix"
                                      : "a down matrix but no up matrix") +
                  ": the file is incomplete");
    LoraLayout layout = LoraLayout::kDiffusers;
    std::vector<std::string> targets = mapper.targets(stem, g.kohya_names, &layout);
    any_kohya = any_kohya || layout == LoraLayout::kKohya;
    any_hunyuan = any_hunyuan || layout == LoraLayout::kHunyuan;
    if (targets.empty())
      report.unmatched.push_back(stem);
    else
      matched.emplace_back(stem, std::move(targets));
  }
  report.layout = any_hunyuan ? LoraLayout::kHunyuan
                              : (any_kohya ? LoraLayout::kKohya : LoraLayout::kDiffusers);
  report.modules = static_cast<int>(groups.size());
  const double unmatched_share =
      static_cast<double>(report.unmatched.size()) / static_cast<double>(groups.size());
  if (matched.empty())
    throw Error(spec.path + ": none of its " + std::to_string(groups.size()) +
                " LoRA modules is a module of this transformer (a LoRA for another model, such "
                "as SDXL, Flux or Wan?); its modules:" +
                list_some(report.unmatched));
  if (unmatched_share > options.max_unmatched_share)
    throw Error(spec.path + ": " + std::to_string(report.unmatched.size()) + " of its " +
                std::to_string(groups.size()) +
                " LoRA modules are not in this transformer (a LoRA for another model?):" +
                list_some(report.unmatched));

  for (const auto& [stem, targets] : matched) {
    const Group& g = groups.at(stem);
    const at::Tensor down = read_matrix(*file, g.down_key, 2);
    const at::Tensor up = read_matrix(*file, g.up_key, 2);
    const std::int64_t rank = down.size(0);
    if (up.size(1) != rank)
      throw Error(spec.path + ": LoRA module \"" + stem + "\": rank mismatch, the down matrix " +
                  shape_str(down.sizes()) + " has rank " + std::to_string(rank) +
                  " but the up matrix " + shape_str(up.sizes()) + " has " +
                  std::to_string(up.size(1)));
    double scale = spec.strength;
    if (!g.alpha_key.empty() && options.use_alpha) {
      const at::Tensor a = file->tensor(g.alpha_key);
      if (a.numel() != 1 || !at::isFloatingType(a.scalar_type()))
        throw Error(spec.path + ": \"" + g.alpha_key + "\" is not a single number");
      const double alpha = a.to(at::kDouble).item<double>();
      if (!std::isfinite(alpha)) throw Error(spec.path + ": \"" + g.alpha_key + "\" is not finite");
      scale *= alpha / static_cast<double>(rank);
    }
    // Rows of the up matrix per target: the targets' own output sizes, which must add up.
    std::int64_t rows = 0;
    std::vector<std::int64_t> target_rows;
    for (const std::string& m : targets) {
      const std::vector<std::int64_t>& shape = base.info(m + ".weight").shape;
      if (shape[1] != down.size(1))
        throw Error(spec.path + ": LoRA module \"" + stem + "\" takes " +
                    std::to_string(down.size(1)) + " inputs but \"" + m + ".weight\" " +
                    shape_str(shape) + " takes " + std::to_string(shape[1]) +
                    " (a LoRA for another model size?)");
      target_rows.push_back(shape[0]);
      rows += shape[0];
    }
    if (rows != up.size(0))
      throw Error(spec.path + ": LoRA module \"" + stem + "\" gives " + std::to_string(up.size(0)) +
                  " outputs but the model's " +
                  (targets.size() > 1 ? "fused targets take " : "\"" + targets[0] + "\" takes ") +
                  std::to_string(rows) + " (a LoRA for another model size?)");
    std::int64_t row = 0;
    for (std::size_t k = 0; k < targets.size(); ++k) {
      LoraFactor f;
      f.down = down;
      f.up = targets.size() == 1 ? up : up.narrow(0, row, target_rows[k]).contiguous();
      f.scale = scale;
      row += target_rows[k];
      patch[targets[k] + ".weight"].push_back(std::move(f));
      ++report.weights;
    }
    report.rank = std::max<int>(report.rank, static_cast<int>(rank));
  }
}

}  // namespace

LoraPatch build_lora_patch(const std::vector<LoraSpec>& loras, const io::TensorStore& base,
                           std::vector<LoraFileReport>* reports, const LoraOptions& options) {
  const Mapper mapper(base);
  LoraPatch patch;
  for (const LoraSpec& spec : loras) {
    LoraFileReport report;
    add_file(spec, mapper, base, options, patch, report);
    if (reports) reports->push_back(std::move(report));
  }
  return patch;
}

LoraSpec parse_lora_argument(const std::string& arg) {
  LoraSpec spec;
  spec.path = arg;
  const std::size_t colon = arg.rfind(':');
  if (colon == std::string::npos || colon + 1 >= arg.size()) return spec;
  const std::string tail = arg.substr(colon + 1);
  char* end = nullptr;
  const double v = std::strtod(tail.c_str(), &end);
  if (end == tail.c_str() || *end != '\0') return spec;  // a colon inside the path
  spec.path = arg.substr(0, colon);
  spec.strength = v;
  return spec;
}

std::string default_lora_dir() {
  std::string base;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    base = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.local/share";
  else
    return "";
  return base + "/framesmith/loras";
}

std::string resolve_lora_path(const std::string& path, const std::string& dir) {
  if (io::is_file(path) || dir.empty() || path.find('/') != std::string::npos) return path;
  for (const std::string& candidate : {dir + "/" + path, dir + "/" + path + ".safetensors"})
    if (io::is_file(candidate)) return candidate;
  return path;
}

LoraSummary summarize_lora_file(const std::string& path) {
  LoraSummary s;
  s.path = path;
  try {
    const auto file = io::SafeTensorsFile::open(path);
    std::error_code ec;
    s.bytes = std::filesystem::file_size(path, ec);
    std::vector<std::string> unreadable;
    const std::map<std::string, Group> groups = group_keys(*file, &unreadable);
    s.modules = static_cast<int>(groups.size());
    bool kohya = false, hunyuan = false;
    for (const auto& [stem, g] : groups) {
      kohya = kohya || g.kohya_names;
      hunyuan = hunyuan || is_hunyuan_stem(stem);
      if (!g.down_key.empty()) {
        const auto& shape = file->info(g.down_key).shape;
        if (!shape.empty()) s.rank = std::max<int>(s.rank, static_cast<int>(shape[0]));
      }
    }
    s.layout =
        hunyuan ? LoraLayout::kHunyuan : (kohya ? LoraLayout::kKohya : LoraLayout::kDiffusers);
    if (groups.empty())
      s.problem = "no LoRA weights in it";
    else if (!unreadable.empty())
      s.problem = std::to_string(unreadable.size()) + " tensor(s) of a kind not applied (LyCORIS?)";
  } catch (const std::exception& e) {
    s.problem = e.what();
  }
  return s;
}

std::vector<std::string> list_lora_files(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 12 && io::ends_with(n, ".safetensors") && io::is_file(dir + "/" + n))
      out.push_back(dir + "/" + n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace framesmith
