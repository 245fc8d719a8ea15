// Text clean-up that CLIP's simple_tokenizer.py applies before its regex, in Python semantics:
// ftfy.fix_text (the parts that matter for prompts), html.unescape, str.isspace / str.strip,
// str.lower. Code points in, code points out.
#pragma once
#include <string>

namespace framesmith::text::detail {

// Python's str.isspace() for one code point.
bool python_isspace(char32_t cp);

// Python's str.lower(): Unicode lowercase mapping, with U+0130 -> "i̇" and CPython's final-sigma
// rule ("Σ" after a cased letter and before none, skipping case-ignorable marks -> "ς").
std::u32string python_lower(const std::u32string& s);

// Python's html.unescape: numeric references (&#65; &#x41;, with the HTML5 fix-ups: 0x80-0x9F as
// Windows-1252, NUL/surrogates/out of range as U+FFFD, other control code points dropped) and the
// common named entities (&amp; &lt; &gt; &quot; &apos; &nbsp; dashes, quotes, ...). Rare named
// entities stay as they are.
std::u32string html_unescape(const std::u32string& s);

// The subset of ftfy.fix_text that changes ordinary prompts: HTML references unescaped when the
// text has no '<' (ftfy's "auto"), C1 controls read as Windows-1252,
// Latin ligatures split, full-width ASCII and U+3000 made normal width, curly quotes made
// straight, and invisible control characters removed. Not done: mojibake repair and NFC.
std::u32string ftfy_lite(const std::u32string& s);

// re.sub(r"\s+", " ", s).strip() with Python's notion of whitespace.
std::u32string collapse_whitespace(const std::u32string& s);

std::u32string utf8_to_u32(const std::string& valid_utf8);
std::string u32_to_utf8(const std::u32string& s);

}  // namespace framesmith::text::detail
