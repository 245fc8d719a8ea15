#include "framesmith/units.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>

#include "framesmith/error.h"

namespace framesmith {

std::int64_t parse_size(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  const std::size_t start = i;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  const std::string number = text.substr(start, i - start);
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit = text.substr(i);
  for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double value = 0;
  try {
    std::size_t used = 0;
    value = number.empty() ? -1 : std::stod(number, &used);
    if (used != number.size()) value = -1;
  } catch (const std::exception&) {
    value = -1;
  }
  double mult = -1;
  if (unit.empty() || unit == "b")
    mult = 1;
  else if (unit == "kib" || unit == "k")
    mult = 1024.0;
  else if (unit == "mib" || unit == "m")
    mult = 1024.0 * 1024;
  else if (unit == "gib" || unit == "g")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "tib" || unit == "t")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb")
    mult = 1e3;
  else if (unit == "mb")
    mult = 1e6;
  else if (unit == "gb")
    mult = 1e9;
  else if (unit == "tb")
    mult = 1e12;
  if (value < 0 || mult < 0 || !std::isfinite(value * mult) || value * mult > 9.0e18)
    throw Error("\"" + text + "\" is not a size (examples: 50331648, 512MiB, 6GiB)");
  return static_cast<std::int64_t>(std::llround(value * mult));
}

std::string format_size(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = std::fabs(bytes);
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u ? "%s%.1f %s" : "%s%.0f %s", bytes < 0 ? "-" : "", v, units[u]);
  return buf;
}

SeedChoice parse_seed(const std::string& text) {
  std::string t = text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  std::size_t i = 0;
  while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
  t = t.substr(i);
  const auto bad = [&](const std::string& why) {
    return Error("seed \"" + text + "\" " + why +
                 " (a whole number from 0 to 18446744073709551615, or -1 for a random seed)");
  };
  if (t == "-1") return {0, true};
  if (t.empty()) throw bad("is empty");
  std::uint64_t v = 0;
  for (char ch : t) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) throw bad("is not a whole number");
    const std::uint64_t d = static_cast<std::uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) throw bad("is out of range");
    v = v * 10 + d;
  }
  return {v, false};
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(rd());
}

}  // namespace framesmith
