#include "grpo/tokenizer/byte_level.h"

#include <unordered_map>

#include "grpo/tokenizer/unicode.h"

namespace grpo::tok {
namespace {

struct Tables {
  std::array<char32_t, 256> to_cp{};
  std::array<std::string, 256> to_str;
  std::unordered_map<char32_t, int> to_byte;
  Tables() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      to_cp[b] = printable ? char32_t(b) : char32_t(256 + n++);
      append_utf8(to_str[b], to_cp[b]);
      to_byte[to_cp[b]] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return tables().to_cp[b]; }
const std::array<std::string, 256>& byte_to_unicode_strings() { return tables().to_str; }

int unicode_to_byte(char32_t cp) {
  const auto& m = tables().to_byte;
  auto it = m.find(cp);
  return it == m.end() ? -1 : it->second;
}

std::string bytes_to_unicode(std::string_view bytes) {
  const auto& s = tables().to_str;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += s[b];
  return out;
}

}  // namespace grpo::tok
