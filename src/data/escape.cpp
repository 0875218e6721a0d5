#include "grpo/data/escape.h"

namespace grpo::data {

std::string escape_for_terminal(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  auto esc = [&](unsigned char c) { out += "\\x", out += hex[c >> 4], out += hex[c & 15]; };
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) esc(c);
      else out += static_cast<char>(c);
      ++i;
      continue;
    }
    // Length of the sequence a lead byte announces (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
    const size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && n >= 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0) && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (!ok) {
      esc(c);
      ++i;
      continue;
    }
    out.append(s, i, n);
    i += n;
  }
  return out;
}

}  // namespace grpo::data
