#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framesmith/error.h"
#include "golden/golden_text.h"
#include "text/tokenizer_bpe.h"
#include "text/tokenizer_clip.h"
#include "text/tokenizer_llama.h"

namespace framesmith::golden {

namespace {

using nlohmann::json;

std::vector<std::int64_t> row(const at::Tensor& ids2d, std::int64_t i) {
  const at::Tensor r = ids2d[i].to(at::kLong).contiguous();
  return std::vector<std::int64_t>(r.data_ptr<std::int64_t>(),
                                   r.data_ptr<std::int64_t>() + r.numel());
}

// Short, printable excerpt of a prompt for messages.
std::string excerpt(const std::string& text) {
  std::string s = text.size() > 60 ? text.substr(0, 60) + "..." : text;
  for (char& ch : s)
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  return "\"" + s + "\"";
}

}  // namespace

CaseResult compare_ids(const std::string& case_name, const std::string& output,
                       const std::vector<std::int64_t>& actual,
                       const std::vector<std::int64_t>& expected) {
  CaseResult r;
  r.case_name = case_name;
  r.output = output;
  r.tolerance = 0.0;
  const std::size_t n = std::max(actual.size(), expected.size());
  std::size_t mismatches = 0, first = n;
  for (std::size_t i = 0; i < n; ++i) {
    const bool both = i < actual.size() && i < expected.size();
    if (both && actual[i] == expected[i]) continue;
    ++mismatches;
    first = std::min(first, i);
    if (both) r.max_abs = std::max(r.max_abs, double(std::llabs(actual[i] - expected[i])));
  }
  r.rel_l2 = n ? double(mismatches) / double(n) : 0.0;
  r.passed = mismatches == 0;
  if (!r.passed) {
    std::ostringstream o;
    o << mismatches << " of " << n << " ids differ; first at position " << first << ": got ";
    if (first < actual.size())
      o << actual[first];
    else
      o << "(end, length " << actual.size() << ")";
    o << ", expected ";
    if (first < expected.size())
      o << expected[first];
    else
      o << "(end, length " << expected.size() << ")";
    r.error = o.str();
  }
  return r;
}

std::vector<CaseResult> run_clip_tokenize(const Case& c) {
  const auto tok = text::ClipTokenizer::from_folder(c.set_dir() + "/tokenizer_2");
  json prompts;
  try {
    prompts = json::parse(c.meta("prompts"));
  } catch (const json::parse_error& e) {
    throw Error(c.name() + ": metadata \"prompts\" is not JSON: " + e.what());
  }
  if (!prompts.is_array()) throw Error(c.name() + ": metadata \"prompts\" is not a JSON list");
  const at::Tensor expected = c.out("input_ids");
  if (expected.dim() != 2 || expected.size(0) != std::int64_t(prompts.size()))
    throw Error(c.name() + ": out.input_ids should be [" + std::to_string(prompts.size()) +
                ", length], one row per prompt");
  const bool has_mask = c.has_out("attention_mask");
  const at::Tensor mask = has_mask ? c.out("attention_mask") : at::Tensor();
  const int length = static_cast<int>(expected.size(1));

  std::vector<CaseResult> results;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (!prompts[i].is_string())
      throw Error(c.name() + ": prompt " + std::to_string(i) + " is not a string");
    const std::string prompt = prompts[i].get<std::string>();
    const text::Encoding enc = tok.encode(prompt, length);
    const std::string idx = "[" + std::to_string(i) + "]";
    CaseResult r = compare_ids(c.name(), "input_ids" + idx, enc.ids, row(expected, i));
    if (!r.passed) r.error += " for prompt " + excerpt(prompt);
    results.push_back(std::move(r));
    if (has_mask)
      results.push_back(
          compare_ids(c.name(), "attention_mask" + idx, enc.attention_mask, row(mask, i)));
  }
  return results;
}

std::vector<CaseResult> run_llama_tokenize(const std::string& set_dir) {
  const std::string path = set_dir + "/llama_tokenize.json";
  const std::string text = text::detail::read_file(path, "llama_tokenize.json");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error("llama_tokenize.json " + path + ": malformed JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("cases") || !j["cases"].is_array())
    throw Error("llama_tokenize.json " + path + ": no \"cases\" list");
  const auto tok = text::LlamaTokenizer::from_file(set_dir + "/tokenizer/tokenizer.json");

  std::vector<CaseResult> results;
  const json& cases = j["cases"];
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const json& k = cases[i];
    const std::string name = "cases[" + std::to_string(i) + "]";
    if (!k.is_object() || !k.contains("text") || !k["text"].is_string() || !k.contains("ids") ||
        !k["ids"].is_array())
      throw Error("llama_tokenize.json " + path + ": " + name + " needs \"text\" and \"ids\"");
    std::vector<std::int64_t> expected;
    for (const json& id : k["ids"]) {
      if (!id.is_number_integer())
        throw Error("llama_tokenize.json " + path + ": " + name + ".ids has a non-integer");
      expected.push_back(id.get<std::int64_t>());
    }
    const std::string prompt = k["text"].get<std::string>();
    const text::Encoding enc = tok.encode(prompt);
    CaseResult r = compare_ids("llama_tokenize", name, enc.ids, expected);
    if (!r.passed) r.error += " for text " + excerpt(prompt);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace framesmith::golden
