#include "text/tokenizer_text_clean.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "text/tokenizer_bpe.h"

namespace framesmith::text::detail {

namespace {

// Python's simple lowercase mapping (Unicode 14, from CPython's str.lower of every code point) as
// runs: code points first..last, every `stride`-th one, map to cp + delta.
struct LowerRun {
  char32_t first, last;
  std::int32_t delta, stride;
};
constexpr LowerRun kLowerRuns[] = {
    {0x0041, 0x005A, 32, 1},     {0x00C0, 0x00D6, 32, 1},     {0x00D8, 0x00DE, 32, 1},
    {0x0100, 0x012E, 1, 2},      {0x0132, 0x0136, 1, 2},      {0x0139, 0x0147, 1, 2},
    {0x014A, 0x0176, 1, 2},      {0x0178, 0x0178, -121, 1},   {0x0179, 0x017D, 1, 2},
    {0x0181, 0x0181, 210, 1},    {0x0182, 0x0184, 1, 2},      {0x0186, 0x0186, 206, 1},
    {0x0187, 0x0187, 1, 1},      {0x0189, 0x018A, 205, 1},    {0x018B, 0x018B, 1, 1},
    {0x018E, 0x018E, 79, 1},     {0x018F, 0x018F, 202, 1},    {0x0190, 0x0190, 203, 1},
    {0x0191, 0x0191, 1, 1},      {0x0193, 0x0193, 205, 1},    {0x0194, 0x0194, 207, 1},
    {0x0196, 0x0196, 211, 1},    {0x0197, 0x0197, 209, 1},    {0x0198, 0x0198, 1, 1},
    {0x019C, 0x019C, 211, 1},    {0x019D, 0x019D, 213, 1},    {0x019F, 0x019F, 214, 1},
    {0x01A0, 0x01A4, 1, 2},      {0x01A6, 0x01A6, 218, 1},    {0x01A7, 0x01A7, 1, 1},
    {0x01A9, 0x01A9, 218, 1},    {0x01AC, 0x01AC, 1, 1},      {0x01AE, 0x01AE, 218, 1},
    {0x01AF, 0x01AF, 1, 1},      {0x01B1, 0x01B2, 217, 1},    {0x01B3, 0x01B5, 1, 2},
    {0x01B7, 0x01B7, 219, 1},    {0x01B8, 0x01B8, 1, 1},      {0x01BC, 0x01BC, 1, 1},
    {0x01C4, 0x01C4, 2, 1},      {0x01C5, 0x01C5, 1, 1},      {0x01C7, 0x01C7, 2, 1},
    {0x01C8, 0x01C8, 1, 1},      {0x01CA, 0x01CA, 2, 1},      {0x01CB, 0x01DB, 1, 2},
    {0x01DE, 0x01EE, 1, 2},      {0x01F1, 0x01F1, 2, 1},      {0x01F2, 0x01F4, 1, 2},
    {0x01F6, 0x01F6, -97, 1},    {0x01F7, 0x01F7, -56, 1},    {0x01F8, 0x021E, 1, 2},
    {0x0220, 0x0220, -130, 1},   {0x0222, 0x0232, 1, 2},      {0x023A, 0x023A, 10795, 1},
    {0x023B, 0x023B, 1, 1},      {0x023D, 0x023D, -163, 1},   {0x023E, 0x023E, 10792, 1},
    {0x0241, 0x0241, 1, 1},      {0x0243, 0x0243, -195, 1},   {0x0244, 0x0244, 69, 1},
    {0x0245, 0x0245, 71, 1},     {0x0246, 0x024E, 1, 2},      {0x0370, 0x0372, 1, 2},
    {0x0376, 0x0376, 1, 1},      {0x037F, 0x037F, 116, 1},    {0x0386, 0x0386, 38, 1},
    {0x0388, 0x038A, 37, 1},     {0x038C, 0x038C, 64, 1},     {0x038E, 0x038F, 63, 1},
    {0x0391, 0x03A1, 32, 1},     {0x03A3, 0x03AB, 32, 1},     {0x03CF, 0x03CF, 8, 1},
    {0x03D8, 0x03EE, 1, 2},      {0x03F4, 0x03F4, -60, 1},    {0x03F7, 0x03F7, 1, 1},
    {0x03F9, 0x03F9, -7, 1},     {0x03FA, 0x03FA, 1, 1},      {0x03FD, 0x03FF, -130, 1},
    {0x0400, 0x040F, 80, 1},     {0x0410, 0x042F, 32, 1},     {0x0460, 0x0480, 1, 2},
    {0x048A, 0x04BE, 1, 2},      {0x04C0, 0x04C0, 15, 1},     {0x04C1, 0x04CD, 1, 2},
    {0x04D0, 0x052E, 1, 2},      {0x0531, 0x0556, 48, 1},     {0x10A0, 0x10C5, 7264, 1},
    {0x10C7, 0x10C7, 7264, 1},   {0x10CD, 0x10CD, 7264, 1},   {0x13A0, 0x13EF, 38864, 1},
    {0x13F0, 0x13F5, 8, 1},      {0x1C90, 0x1CBA, -3008, 1},  {0x1CBD, 0x1CBF, -3008, 1},
    {0x1E00, 0x1E94, 1, 2},      {0x1E9E, 0x1E9E, -7615, 1},  {0x1EA0, 0x1EFE, 1, 2},
    {0x1F08, 0x1F0F, -8, 1},     {0x1F18, 0x1F1D, -8, 1},     {0x1F28, 0x1F2F, -8, 1},
    {0x1F38, 0x1F3F, -8, 1},     {0x1F48, 0x1F4D, -8, 1},     {0x1F59, 0x1F5F, -8, 2},
    {0x1F68, 0x1F6F, -8, 1},     {0x1F88, 0x1F8F, -8, 1},     {0x1F98, 0x1F9F, -8, 1},
    {0x1FA8, 0x1FAF, -8, 1},     {0x1FB8, 0x1FB9, -8, 1},     {0x1FBA, 0x1FBB, -74, 1},
    {0x1FBC, 0x1FBC, -9, 1},     {0x1FC8, 0x1FCB, -86, 1},    {0x1FCC, 0x1FCC, -9, 1},
    {0x1FD8, 0x1FD9, -8, 1},     {0x1FDA, 0x1FDB, -100, 1},   {0x1FE8, 0x1FE9, -8, 1},
    {0x1FEA, 0x1FEB, -112, 1},   {0x1FEC, 0x1FEC, -7, 1},     {0x1FF8, 0x1FF9, -128, 1},
    {0x1FFA, 0x1FFB, -126, 1},   {0x1FFC, 0x1FFC, -9, 1},     {0x2126, 0x2126, -7517, 1},
    {0x212A, 0x212A, -8383, 1},  {0x212B, 0x212B, -8262, 1},  {0x2132, 0x2132, 28, 1},
    {0x2160, 0x216F, 16, 1},     {0x2183, 0x2183, 1, 1},      {0x24B6, 0x24CF, 26, 1},
    {0x2C00, 0x2C2F, 48, 1},     {0x2C60, 0x2C60, 1, 1},      {0x2C62, 0x2C62, -10743, 1},
    {0x2C63, 0x2C63, -3814, 1},  {0x2C64, 0x2C64, -10727, 1}, {0x2C67, 0x2C6B, 1, 2},
    {0x2C6D, 0x2C6D, -10780, 1}, {0x2C6E, 0x2C6E, -10749, 1}, {0x2C6F, 0x2C6F, -10783, 1},
    {0x2C70, 0x2C70, -10782, 1}, {0x2C72, 0x2C72, 1, 1},      {0x2C75, 0x2C75, 1, 1},
    {0x2C7E, 0x2C7F, -10815, 1}, {0x2C80, 0x2CE2, 1, 2},      {0x2CEB, 0x2CED, 1, 2},
    {0x2CF2, 0x2CF2, 1, 1},      {0xA640, 0xA66C, 1, 2},      {0xA680, 0xA69A, 1, 2},
    {0xA722, 0xA72E, 1, 2},      {0xA732, 0xA76E, 1, 2},      {0xA779, 0xA77B, 1, 2},
    {0xA77D, 0xA77D, -35332, 1}, {0xA77E, 0xA786, 1, 2},      {0xA78B, 0xA78B, 1, 1},
    {0xA78D, 0xA78D, -42280, 1}, {0xA790, 0xA792, 1, 2},      {0xA796, 0xA7A8, 1, 2},
    {0xA7AA, 0xA7AA, -42308, 1}, {0xA7AB, 0xA7AB, -42319, 1}, {0xA7AC, 0xA7AC, -42315, 1},
    {0xA7AD, 0xA7AD, -42305, 1}, {0xA7AE, 0xA7AE, -42308, 1}, {0xA7B0, 0xA7B0, -42258, 1},
    {0xA7B1, 0xA7B1, -42282, 1}, {0xA7B2, 0xA7B2, -42261, 1}, {0xA7B3, 0xA7B3, 928, 1},
    {0xA7B4, 0xA7C2, 1, 2},      {0xA7C4, 0xA7C4, -48, 1},    {0xA7C5, 0xA7C5, -42307, 1},
    {0xA7C6, 0xA7C6, -35384, 1}, {0xA7C7, 0xA7C9, 1, 2},      {0xA7D0, 0xA7D0, 1, 1},
    {0xA7D6, 0xA7D8, 1, 2},      {0xA7F5, 0xA7F5, 1, 1},      {0xFF21, 0xFF3A, 32, 1},
    {0x10400, 0x10427, 40, 1},   {0x104B0, 0x104D3, 40, 1},   {0x10570, 0x1057A, 39, 1},
    {0x1057C, 0x1058A, 39, 1},   {0x1058C, 0x10592, 39, 1},   {0x10594, 0x10595, 39, 1},
    {0x10C80, 0x10CB2, 64, 1},   {0x118A0, 0x118BF, 32, 1},   {0x16E40, 0x16E5F, 32, 1},
    {0x1E900, 0x1E921, 34, 1},
};

char32_t lower_one(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  // Runs are sorted by first code point: find the last run starting at or before cp.
  auto it = std::upper_bound(std::begin(kLowerRuns), std::end(kLowerRuns), cp,
                             [](char32_t c, const LowerRun& r) { return c < r.first; });
  if (it == std::begin(kLowerRuns)) return cp;
  const LowerRun& r = *std::prev(it);
  if (cp > r.last || (cp - r.first) % r.stride != 0) return cp;
  return static_cast<char32_t>(static_cast<std::int64_t>(cp) + r.delta);
}

// Unicode's Cased and Case_Ignorable properties (what CPython's final-sigma rule asks), through
// PCRE2's general categories: Cased ~ L& plus the common Other_Lowercase/Uppercase letters;
// Case_Ignorable = Mn Me Cf Lm Sk and the Word_Break MidLetter / MidNumLet / Single_Quote marks.
bool in_class(const Regex& cls, char32_t cp) {
  std::string one;
  append_utf8(one, cp);
  bool hit = false;
  cls.for_each_match(one, [&](std::size_t, std::size_t) { hit = true; });
  return hit;
}

bool is_cased(char32_t cp) {
  static const Regex cls(
      R"([\p{L&}\x{AA}\x{BA}\x{2B0}-\x{2B8}\x{2C0}\x{2C1}\x{2E0}-\x{2E4}\x{345}\x{37A})"
      R"(\x{2160}-\x{217F}\x{24B6}-\x{24E9}])",
      false, "Cased class");
  return in_class(cls, cp);
}

bool is_case_ignorable(char32_t cp) {
  static const Regex cls(
      R"([\p{Mn}\p{Me}\p{Cf}\p{Lm}\p{Sk}'.:\x{B7}\x{387}\x{55F}\x{5F4}\x{2018}\x{2019})"
      R"(\x{2024}\x{2027}\x{FE13}\x{FE52}\x{FE55}\x{FF07}\x{FF0E}\x{FF1A}])",
      false, "Case_Ignorable class");
  return in_class(cls, cp);
}

// CPython: Σ is final when a cased letter precedes it and none follows, case-ignorable
// characters (apostrophes, periods, combining marks...) being skipped both ways.
bool is_final_sigma(const std::u32string& s, std::size_t i) {
  std::size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  if (j == 0 || !is_cased(s[j - 1])) return false;
  std::size_t k = i + 1;
  while (k < s.size() && is_case_ignorable(s[k])) ++k;
  return k == s.size() || !is_cased(s[k]);
}

// Windows-1252 for 0x80..0x9F; 0 where the code page leaves the byte undefined.
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

struct NamedEntity {
  const char* name;
  char32_t cp;
  bool legacy;  // also recognised without the trailing ';' (HTML5's legacy entities)
};
constexpr NamedEntity kEntities[] = {
    {"amp", '&', true},        {"lt", '<', true},        {"gt", '>', true},
    {"quot", '"', true},       {"apos", '\'', false},    {"nbsp", 0xA0, true},
    {"copy", 0xA9, true},      {"reg", 0xAE, true},      {"deg", 0xB0, true},
    {"times", 0xD7, true},     {"divide", 0xF7, true},   {"middot", 0xB7, true},
    {"laquo", 0xAB, true},     {"raquo", 0xBB, true},    {"pound", 0xA3, true},
    {"yen", 0xA5, true},       {"cent", 0xA2, true},     {"sect", 0xA7, true},
    {"para", 0xB6, true},      {"plusmn", 0xB1, true},   {"frac12", 0xBD, true},
    {"frac14", 0xBC, true},    {"frac34", 0xBE, true},   {"iexcl", 0xA1, true},
    {"iquest", 0xBF, true},    {"shy", 0xAD, true},      {"trade", 0x2122, false},
    {"hellip", 0x2026, false}, {"mdash", 0x2014, false}, {"ndash", 0x2013, false},
    {"lsquo", 0x2018, false},  {"rsquo", 0x2019, false}, {"ldquo", 0x201C, false},
    {"rdquo", 0x201D, false},  {"bull", 0x2022, false},  {"euro", 0x20AC, false},
};

const NamedEntity* find_entity(const std::u32string& name, bool with_semicolon) {
  for (const NamedEntity& e : kEntities) {
    if (!with_semicolon && !e.legacy) continue;
    const std::string n = e.name;
    if (n.size() == name.size() &&
        std::equal(n.begin(), n.end(), name.begin(),
                   [](char a, char32_t b) { return char32_t(static_cast<unsigned char>(a)) == b; }))
      return &e;
  }
  return nullptr;
}

bool is_digit(char32_t c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char32_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// What Python's html module makes of &#num; (as a string: empty when the code point is dropped).
std::u32string numeric_reference(std::uint64_t num) {
  if (num == 0) return U"\uFFFD";
  if (num == 0x0D) return U"\r";
  if (num >= 0x80 && num <= 0x9F) {
    const char32_t c = kCp1252High[num - 0x80];
    return std::u32string(1, c ? c : char32_t(num));
  }
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  const bool invalid = (num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) ||
                       num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE;
  if (invalid) return U"";
  return std::u32string(1, char32_t(num));
}

}  // namespace

bool python_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::u32string python_lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x130) {  // İ: the one unconditional multi-character lowercase mapping
      out += U"i\u0307";
    } else if (c == 0x3A3) {  // Σ: final form at the end of a word
      out += is_final_sigma(s, i) ? char32_t(0x3C2) : char32_t(0x3C3);
    } else {
      out += lower_one(c);
    }
  }
  return out;
}

std::u32string html_unescape(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&' || i + 1 >= s.size()) {
      out += s[i++];
      continue;
    }
    std::size_t j = i + 1;
    if (s[j] == '#') {  // &#123; or &#x7B; (the ';' is optional)
      const bool hex = j + 1 < s.size() && (s[j + 1] == 'x' || s[j + 1] == 'X');
      std::size_t k = j + (hex ? 2 : 1);
      const std::size_t digits_begin = k;
      std::uint64_t num = 0;
      while (k < s.size() && (hex ? is_hex(s[k]) : is_digit(s[k]))) {
        const char32_t c = s[k];
        const unsigned d = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        num = std::min<std::uint64_t>(num * (hex ? 16 : 10) + d, 0x7FFFFFFF);
        ++k;
      }
      if (k == digits_begin) {  // "&#" without digits stays as it is
        out += s[i++];
        continue;
      }
      if (k < s.size() && s[k] == ';') ++k;
      out += numeric_reference(num);
      i = k;
      continue;
    }
    // Named: up to 32 characters other than \t \n \f space < & # ;, then an optional ';'.
    std::size_t k = j;
    while (k < s.size() && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' &&
           s[k] != ' ' && s[k] != '<' && s[k] != '&' && s[k] != '#' && s[k] != ';')
      ++k;
    if (k == j) {
      out += s[i++];
      continue;
    }
    const std::u32string name = s.substr(j, k - j);
    const bool semi = k < s.size() && s[k] == ';';
    if (const NamedEntity* e = find_entity(name, semi)) {
      out += e->cp;
      i = k + (semi ? 1 : 0);
      continue;
    }
    // Python then tries ever shorter prefixes (length >= 2) among the legacy names.
    bool done = false;
    const std::size_t full = name.size() + (semi ? 1 : 0);
    for (std::size_t x = full - 1; x >= 2 && !done; --x) {
      if (x > name.size()) continue;
      if (const NamedEntity* e = find_entity(name.substr(0, x), false)) {
        out += e->cp;
        i = j + x;
        done = true;
      }
    }
    if (!done) out += s[i++];
  }
  return out;
}

namespace {

bool is_ascii_alnum(char32_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// ftfy's first step (unescape_html="auto"): where the text holds no '<' (so is not HTML markup),
// references of the form &name; / &#123; (1-24 letters or digits and a ';') are unescaped.
std::u32string ftfy_unescape(const std::u32string& s) {
  if (s.find(U'<') != std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '&') {
      std::size_t k = i + 1;
      if (k < s.size() && s[k] == '#') ++k;
      const std::size_t begin = k;
      while (k < s.size() && k - begin < 24 && is_ascii_alnum(s[k])) ++k;
      if (k > begin && k < s.size() && s[k] == ';') {
        out += html_unescape(s.substr(i, k + 1 - i));
        i = k + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

}  // namespace

std::u32string ftfy_lite(const std::u32string& text) {
  const std::u32string s = ftfy_unescape(text);
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0x80 && c <= 0x9F && kCp1252High[c - 0x80]) c = kCp1252High[c - 0x80];
    switch (c) {  // Latin ligatures
      case 0x132:
        out += U"IJ";
        continue;
      case 0x133:
        out += U"ij";
        continue;
      case 0xFB00:
        out += U"ff";
        continue;
      case 0xFB01:
        out += U"fi";
        continue;
      case 0xFB02:
        out += U"fl";
        continue;
      case 0xFB03:
        out += U"ffi";
        continue;
      case 0xFB04:
        out += U"ffl";
        continue;
      case 0xFB05:
        out += U"\u017Ft";
        continue;
      case 0xFB06:
        out += U"st";
        continue;
      default:
        break;
    }
    if (c >= 0xFF01 && c <= 0xFF5E) c -= 0xFEE0;  // full-width ASCII
    if (c == 0x3000) c = ' ';
    if (c >= 0x2018 && c <= 0x201B) c = '\'';
    if (c >= 0x201C && c <= 0x201F) c = '"';
    const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF ||
                         (c >= 0xFFF9 && c <= 0xFFFC) || (c >= 0x1D173 && c <= 0x1D17A) ||
                         (c >= 0xE0000 && c <= 0xE007F);
    if (!control) out += c;
  }
  return out;
}

std::u32string collapse_whitespace(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char32_t c : s) {
    if (python_isspace(c)) {
      pending_space = !out.empty();  // leading whitespace is dropped
      continue;
    }
    if (pending_space) out += U' ';
    pending_space = false;
    out += c;
  }
  return out;  // trailing whitespace never got appended
}

std::u32string utf8_to_u32(const std::string& valid_utf8) {
  const std::vector<char32_t> cps = decode_utf8(valid_utf8);
  return std::u32string(cps.begin(), cps.end());
}

std::string u32_to_utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

}  // namespace framesmith::text::detail
