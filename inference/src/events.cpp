#include "framesmith/events.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "framesmith/utf8.h"

namespace framesmith {

namespace {
const std::pair<EventType, const char*> kNames[] = {
    {EventType::kMemory, "memory"},
    {EventType::kPlan, "plan"},
    {EventType::kOomRecovered, "oom_recovered"},
    {EventType::kAllocator, "allocator"},
    {EventType::kResidency, "residency"},
    {EventType::kProgress, "progress"},
    {EventType::kPreview, "preview"},
    {EventType::kChunkDecoded, "chunk_decoded"},
    {EventType::kSectionDone, "section_done"},
    {EventType::kFinished, "finished"},
    {EventType::kError, "error"},
    {EventType::kPeak, "peak"},
    {EventType::kLora, "lora"},
    {EventType::kNotice, "notice"},
};
}  // namespace

const char* to_string(EventType t) {
  for (const auto& [type, name] : kNames)
    if (type == t) return name;
  return "unknown";
}

std::string to_json_line(const Event& e) {
  nlohmann::ordered_json j;
  j["t"] = std::round(e.t_s * 1000.0) / 1000.0;
  j["type"] = to_string(e.type);
  j["phase"] = escape_invalid_utf8(e.phase);
  for (const auto& [k, v] : e.numbers) {
    // Byte counts and indices are integers; keep them exact in the file.
    if (v == std::floor(v) && std::abs(v) < 9.0e15)
      j[k] = static_cast<std::int64_t>(v);
    else
      j[k] = v;
  }
  // Texts carry prompts, paths and messages, which may hold bytes that are not UTF-8: escaped,
  // so that an event never fails to serialise.
  for (const auto& [k, v] : e.texts) j[k] = escape_invalid_utf8(v);
  return j.dump();
}

Event event_from_json_line(const std::string& line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const std::exception& ex) {
    throw Error(std::string("event line is not JSON: ") + ex.what());
  }
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw Error("event line has no \"type\"");
  Event e;
  const std::string type = j["type"].get<std::string>();
  bool known = false;
  for (const auto& [t, name] : kNames)
    if (type == name) {
      e.type = t;
      known = true;
    }
  if (!known) throw Error("unknown event type \"" + type + "\"");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "type") continue;
    if (it.key() == "t" && it->is_number()) {
      e.t_s = it->get<double>();
    } else if (it.key() == "phase" && it->is_string()) {
      e.phase = it->get<std::string>();
    } else if (it->is_number()) {
      e.numbers[it.key()] = it->get<double>();
    } else if (it->is_string()) {
      e.texts[it.key()] = it->get<std::string>();
    }
  }
  return e;
}

}  // namespace framesmith
