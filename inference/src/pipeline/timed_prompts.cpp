#include "pipeline/timed_prompts.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <sstream>

#include "framesmith/error.h"

namespace framesmith::pipeline {
namespace {

// FramePack-Studio's pattern: [start(s)(-end(s)): text], lazily up to the first ']'.
const std::regex& timestamp_pattern() {
  static const std::regex re(R"(\[(\d+(?:\.\d+)?)s(?:-(\d+(?:\.\d+)?)s)?\s*:\s*([^\]\n]*?)\])");
  return re;
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Every occurrence of `what` in `s` removed (Python's str.replace(what, "")).
void remove_all(std::string& s, const std::string& what) {
  if (what.empty()) return;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at))
    s.erase(at, what.size());
}

// The spans as written (times in seconds), and the text outside brackets.
std::vector<PromptSpan> read_spans(const std::string& text, std::string* rest) {
  std::vector<PromptSpan> spans;
  *rest = text;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), timestamp_pattern());
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    PromptSpan s;
    s.start_s = std::stod(m[1].str());
    if (m[2].matched) s.end_s = std::stod(m[2].str());
    s.prompt = trimmed(m[3].str());
    spans.push_back(s);
    remove_all(*rest, m[0].str());
  }
  *rest = trimmed(*rest);
  return spans;
}

double snap(double t, double section_s) {
  return std::nearbyint(t / section_s) * section_s;  // Python's round(): halves to even
}

}  // namespace

bool has_timestamps(const std::string& text) {
  return std::regex_search(text, timestamp_pattern());
}

std::vector<PromptSpan> parse_timed_prompt(const std::string& text, double total_seconds,
                                           int latent_window, bool backwards) {
  // FramePack-Studio parses whenever there are brackets; without a timestamp in them the whole
  // text is the one prompt, as here.
  if (!has_timestamps(text)) return {PromptSpan{trimmed(text), 0.0, std::nullopt}};
  std::string rest;
  std::vector<PromptSpan> spans = read_spans(text, &rest);
  if (!rest.empty()) spans.push_back(PromptSpan{rest, 0.0, std::nullopt});
  std::stable_sort(spans.begin(), spans.end(),
                   [](const PromptSpan& a, const PromptSpan& b) { return a.start_s < b.start_s; });
  for (std::size_t i = 0; i + 1 < spans.size(); ++i)
    if (!spans[i].end_s) spans[i].end_s = spans[i + 1].start_s;
  if (!spans.empty() && !spans.back().end_s) spans.back().end_s = total_seconds;

  const double section_s = (latent_window * 4 - 3) / 30.0;
  for (PromptSpan& s : spans) {
    s.start_s = snap(s.start_s, section_s);
    if (s.end_s) {
      s.end_s = snap(*s.end_s, section_s);
      if (*s.end_s <= s.start_s) s.end_s = s.start_s + section_s;
    }
  }
  if (!backwards) return spans;
  // The original loop makes the video from its end: times are mirrored.
  std::vector<PromptSpan> mirrored;
  for (const PromptSpan& s : spans)
    mirrored.push_back(
        PromptSpan{s.prompt, s.end_s ? total_seconds - *s.end_s : 0.0, total_seconds - s.start_s});
  std::stable_sort(mirrored.begin(), mirrored.end(),
                   [](const PromptSpan& a, const PromptSpan& b) { return a.start_s < b.start_s; });
  return mirrored;
}

std::vector<std::string> timed_prompt_problems(const std::string& text, double total_seconds) {
  std::vector<std::string> problems;
  if (!has_timestamps(text)) return problems;
  std::string rest;
  std::vector<PromptSpan> spans = read_spans(text, &rest);
  for (const PromptSpan& s : spans) {
    std::ostringstream o;
    if (s.start_s >= total_seconds) {
      o << "the timestamp " << s.start_s << "s (\"" << s.prompt << "\") is past the video's end ("
        << total_seconds << " s)";
      problems.push_back(o.str());
    } else if (s.end_s && *s.end_s <= s.start_s) {
      o << "the span " << s.start_s << "s-" << *s.end_s << "s (\"" << s.prompt
        << "\") ends before it starts";
      problems.push_back(o.str());
    } else if (s.prompt.empty()) {
      o << "the timestamp " << s.start_s << "s has no prompt text";
      problems.push_back(o.str());
    }
  }
  std::stable_sort(spans.begin(), spans.end(),
                   [](const PromptSpan& a, const PromptSpan& b) { return a.start_s < b.start_s; });
  for (std::size_t i = 0; i + 1 < spans.size(); ++i) {
    std::ostringstream o;
    if (spans[i].start_s == spans[i + 1].start_s) {
      o << "two prompts start at " << spans[i].start_s << "s (\"" << spans[i].prompt << "\", \""
        << spans[i + 1].prompt << "\")";
      problems.push_back(o.str());
    } else if (spans[i].end_s && *spans[i].end_s > spans[i + 1].start_s) {
      o << "\"" << spans[i].prompt << "\" (" << spans[i].start_s << "s-" << *spans[i].end_s
        << "s) overlaps \"" << spans[i + 1].prompt << "\", which starts at " << spans[i + 1].start_s
        << "s";
      problems.push_back(o.str());
    }
  }
  return problems;
}

PromptSchedule::PromptSchedule(std::vector<PromptSpan> spans, int blend_sections)
    : spans_(std::move(spans)), blend_sections_(blend_sections) {
  if (spans_.empty()) throw Error("timed prompts: no prompt at all");
  for (const PromptSpan& s : spans_)
    if (std::find(prompts_.begin(), prompts_.end(), s.prompt) == prompts_.end())
      prompts_.push_back(s.prompt);
  // Where the text changes along the span list (FramePack-Studio's prompt_change_indices).
  for (std::size_t i = 0; i < spans_.size(); ++i)
    if (i == 0 || spans_[i].prompt != spans_[i - 1].prompt)
      changes_.emplace_back(static_cast<int>(i), index_of(spans_[i].prompt));
}

int PromptSchedule::index_of(const std::string& prompt) const {
  return static_cast<int>(std::find(prompts_.begin(), prompts_.end(), prompt) - prompts_.begin());
}

SectionPrompt PromptSchedule::for_section(int section, std::int64_t generated_latent_frames) const {
  // The prompt whose span holds the section's time (the first span's when none does).
  double t = static_cast<double>(generated_latent_frames * 4 - 3) / 30.0;
  if (t < 0) t = 0.01;
  SectionPrompt p;
  p.first = p.second = index_of(spans_.front().prompt);
  for (const PromptSpan& s : spans_)
    if (s.start_s <= t && (!s.end_s || t < *s.end_s)) {
      p.first = p.second = index_of(s.prompt);
      break;
    }
  if (blend_sections_ <= 0 || spans_.size() < 2) return p;
  // FramePack-Studio blends exactly at a change's position in the span list, by section index,
  // with weight 1 / blend_sections; sections before it take no blend from later changes.
  for (std::size_t i = 0; i < changes_.size(); ++i) {
    if (section < changes_[i].first) break;
    if (section == changes_[i].first) {
      if (i > 0 && changes_[i - 1].second != changes_[i].second) {
        p.first = changes_[i - 1].second;
        p.second = changes_[i].second;
        p.weight = 1.0 / blend_sections_;
      }
      break;
    }
  }
  return p;
}

}  // namespace framesmith::pipeline
