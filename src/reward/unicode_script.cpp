#include "grpo/reward/unicode_script.h"

namespace grpo::reward {
namespace {

struct Range {
  char32_t lo, hi;
  Script script;
};

// Unicode blocks (Unicode 15 Blocks.txt), letters only where a block mixes letters and symbols.
constexpr Range kRanges[] = {
    {U'A', U'Z', Script::LATIN},         {U'a', U'z', Script::LATIN},
    {0x00AA, 0x00AA, Script::LATIN},     {0x00BA, 0x00BA, Script::LATIN},
    {0x00C0, 0x00D6, Script::LATIN},     {0x00D8, 0x00F6, Script::LATIN},  // skips U+00D7 multiplication sign
    {0x00F8, 0x024F, Script::LATIN},                                       // skips U+00F7 division sign
    {0x0250, 0x02AF, Script::LATIN},     {0x1D00, 0x1D7F, Script::LATIN},  // IPA, phonetic extensions
    {0x1E00, 0x1EFF, Script::LATIN},     {0x2C60, 0x2C7F, Script::LATIN},
    {0xA720, 0xA7FF, Script::LATIN},     {0xAB30, 0xAB6F, Script::LATIN},
    {0xFF21, 0xFF3A, Script::LATIN},     {0xFF41, 0xFF5A, Script::LATIN},  // fullwidth
    {0x0370, 0x03FF, Script::OTHER_LETTER},  // Greek
    {0x1F00, 0x1FFF, Script::OTHER_LETTER},
    {0x0400, 0x052F, Script::CYRILLIC},  {0x1C80, 0x1C8F, Script::CYRILLIC},
    {0x2DE0, 0x2DFF, Script::CYRILLIC},  {0xA640, 0xA69F, Script::CYRILLIC},
    {0x0530, 0x058F, Script::OTHER_LETTER},  // Armenian
    {0x0590, 0x05FF, Script::OTHER_LETTER},  // Hebrew
    {0x0620, 0x064A, Script::ARABIC},    {0x064B, 0x065F, Script::ARABIC},  // letters, harakat
    {0x066E, 0x06D3, Script::ARABIC},    {0x06D5, 0x06D5, Script::ARABIC},
    {0x06FA, 0x06FF, Script::ARABIC},    {0x0750, 0x077F, Script::ARABIC},
    {0x08A0, 0x08FF, Script::ARABIC},    {0xFB50, 0xFDFF, Script::ARABIC},
    {0xFE70, 0xFEFF, Script::ARABIC},
    {0x0900, 0x0963, Script::DEVANAGARI},  // skips danda U+0964-0965 and digits U+0966-096F
    {0x0970, 0x097F, Script::DEVANAGARI}, {0xA8E0, 0xA8FF, Script::DEVANAGARI},
    {0x0980, 0x0DFF, Script::OTHER_LETTER},  // Bengali .. Sinhala
    {0x0E00, 0x0E7F, Script::OTHER_LETTER},  // Thai
    {0x10A0, 0x10FF, Script::OTHER_LETTER},  // Georgian
    {0x1100, 0x11FF, Script::CJK},       {0x3040, 0x309F, Script::CJK},  // Hangul Jamo, Hiragana
    {0x30A0, 0x30FF, Script::CJK},       {0x3130, 0x318F, Script::CJK},  // Katakana, Hangul compat
    {0x31F0, 0x31FF, Script::CJK},       {0x3400, 0x4DBF, Script::CJK},  // Katakana ext, Han ext A
    {0x4E00, 0x9FFF, Script::CJK},       {0xAC00, 0xD7AF, Script::CJK},  // Han, Hangul syllables
    {0xF900, 0xFAFF, Script::CJK},       {0xFF66, 0xFF9D, Script::CJK},  // compat Han, halfwidth kana
    {0x20000, 0x323AF, Script::CJK},                                     // Han ext B..H
};

}  // namespace

Script script_of(char32_t cp) {
  if (cp < 0x80 && !((cp >= U'A' && cp <= U'Z') || (cp >= U'a' && cp <= U'z'))) return Script::NONE;
  for (const auto& r : kRanges)
    if (cp >= r.lo && cp <= r.hi) return r.script;
  return Script::NONE;
}

std::optional<Script> script_from_name(std::string_view name) {
  if (name == "latin") return Script::LATIN;
  if (name == "cjk") return Script::CJK;
  if (name == "cyrillic") return Script::CYRILLIC;
  if (name == "arabic") return Script::ARABIC;
  if (name == "devanagari") return Script::DEVANAGARI;
  return std::nullopt;
}

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len = 0;
  char32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

}  // namespace grpo::reward
