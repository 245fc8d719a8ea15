// Reference parity for the text side: tokenizers (exact id equality). Runners throw Error when a
// file cannot be read; each compared sequence is one CaseResult.
#pragma once
#include <string>
#include <vector>

#include "golden/golden.h"

namespace framesmith::golden {

// Exact comparison of two id sequences: rel_l2 = fraction of positions that differ (a length
// difference counts its extra positions), max_abs = largest |id difference|, tolerance 0; passed
// only when equal. `error` describes the first mismatch (position, both ids) when they differ.
CaseResult compare_ids(const std::string& case_name, const std::string& output,
                       const std::vector<std::int64_t>& actual,
                       const std::vector<std::int64_t>& expected);

// clip_tokenize: the prompts in the metadata (JSON list) through `<set>/tokenizer_2` (CLIP BPE),
// padded to the width of out.input_ids; one result per prompt ("input_ids[i]").
std::vector<CaseResult> run_clip_tokenize(const Case& c);

// `<set>/llama_tokenize.json` (cases[i].text -> cases[i].ids) through
// `<set>/tokenizer/tokenizer.json` with its own post-processor, no truncation or padding; one
// result per case ("cases[i]").
std::vector<CaseResult> run_llama_tokenize(const std::string& set_dir);

}  // namespace framesmith::golden
