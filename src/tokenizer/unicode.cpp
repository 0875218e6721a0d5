#include "grpo/tokenizer/unicode.h"

#include <re2/re2.h>

#include <array>
#include <atomic>
#include <memory>

namespace grpo::tok {

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte (RFC 3629 table)
  if (b0 >= 0xc2 && b0 <= 0xdf) len = 2, cp = b0 & 0x1f;
  else if (b0 >= 0xe0 && b0 <= 0xef) len = 3, cp = b0 & 0x0f, lo = b0 == 0xe0 ? 0xa0 : 0x80, hi = b0 == 0xed ? 0x9f : 0xbf;
  else if (b0 >= 0xf0 && b0 <= 0xf4) len = 4, cp = b0 & 0x07, lo = b0 == 0xf0 ? 0x90 : 0x80, hi = b0 == 0xf4 ? 0x8f : 0xbf;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xfffd;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) {
      ++i;
      return 0xfffd;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

namespace {

// Per-code-point class cache, filled lazily from RE2's Unicode tables: 0 = not computed yet,
// otherwise 1 | 2 (letter) | 4 (number). Racing writers store the same value, so relaxed atomics
// are enough.
constexpr char32_t kMaxCp = 0x110000;
uint8_t classify(char32_t cp) {
  static const auto table = std::make_unique<std::atomic<uint8_t>[]>(kMaxCp);
  static const RE2 letter("\\p{L}"), number("\\p{N}");
  if (cp >= kMaxCp) return 1;
  uint8_t v = table[cp].load(std::memory_order_relaxed);
  if (v) return v;
  std::string s;
  append_utf8(s, cp);
  v = 1;
  if (cp >= 0x80 || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
    if (RE2::FullMatch(s, letter)) v |= 2;
    else if (RE2::FullMatch(s, number)) v |= 4;
  }
  table[cp].store(v, std::memory_order_relaxed);
  return v;
}

}  // namespace

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return classify(cp) & 2;
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return classify(cp) & 4;
}

bool is_whitespace(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20;
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    if (b0 < 0x80) {
      out += static_cast<char>(b0);
      ++i;
      continue;
    }
    int len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) len = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef) len = 3, lo = b0 == 0xe0 ? 0xa0 : 0x80, hi = b0 == 0xed ? 0x9f : 0xbf;
    else if (b0 >= 0xf0 && b0 <= 0xf4) len = 4, lo = b0 == 0xf0 ? 0x90 : 0x80, hi = b0 == 0xf4 ? 0x8f : 0xbf;
    if (len == 0) {  // a byte that can never start a sequence: one replacement for it alone
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    // Consume the longest valid prefix of a sequence; if it is incomplete, that whole prefix is
    // one "maximal subpart" and becomes a single U+FFFD (Unicode 15, section 3.9, D93b).
    int k = 1;
    while (k < len && i + k < bytes.size()) {
      const auto b = static_cast<unsigned char>(bytes[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) break;
      ++k;
    }
    if (k == len) out.append(bytes.substr(i, len));
    else out += "\xef\xbf\xbd";
    i += k;
  }
  return out;
}

}  // namespace grpo::tok
