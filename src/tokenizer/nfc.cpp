// Unicode Normalization Form C (UAX #15): canonical decomposition, canonical ordering, canonical
// composition. Tables are generated from Python's unicodedata by scripts/make_unicode_tables.py;
// Hangul syllables are handled algorithmically (UAX #15 / Unicode 3.12).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/tokenizer/unicode.h"

namespace grpo::tok {
namespace {

struct CccEntry {
  uint32_t cp;
  uint8_t ccc;
};
struct DecompEntry {
  uint32_t cp, a, b;  // b == 0: singleton
};
struct CompEntry {
  uint32_t a, b, cp;
};

#include "unicode_nfc_tables.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::lower_bound(std::begin(kCcc), std::end(kCcc), cp, [](const CccEntry& e, uint32_t c) { return e.cp < c; });
  return it != std::end(kCcc) && it->cp == cp ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                               [](const DecompEntry& e, uint32_t c) { return e.cp < c; });
    if (it != std::end(kDecomp) && it->cp == cp) {
      decompose(it->a, out);
      if (it->b) decompose(it->b, out);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of a + b, or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kComp), std::end(kComp), std::make_pair(a, b),
                             [](const CompEntry& e, const std::pair<uint32_t, uint32_t>& k) {
                               return e.a != k.first ? e.a < k.first : e.b < k.second;
                             });
  return it != std::end(kComp) && it->a == a && it->b == b ? it->cp : 0;
}

}  // namespace

std::string nfc(std::string_view s) {
  bool ascii = true;
  for (unsigned char c : s)
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return std::string(s);
  if (utf8_lossy(s) != s) return std::string(s);  // not valid UTF-8: leave the bytes alone

  std::vector<uint32_t> buf;
  buf.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_code_point(s, i), buf);

  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < buf.size();) {
    if (ccc(buf[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < buf.size() && ccc(buf[j]) != 0) ++j;
    std::stable_sort(buf.begin() + i, buf.begin() + j, [](uint32_t x, uint32_t y) { return ccc(x) < ccc(y); });
    i = j;
  }

  // Canonical composition (UAX #15 sample algorithm): a char composes with the last starter
  // unless a char of equal or higher class (or a starter) stands between them.
  if (!buf.empty()) {
    size_t starter = 0, w = 1;
    int last_class = ccc(buf[0]) ? 256 : 0;
    for (size_t r = 1; r < buf.size(); ++r) {
      uint32_t ch = buf[r];
      int cls = ccc(ch);
      uint32_t comp = compose(buf[starter], ch);
      if (comp && (last_class < cls || last_class == 0)) {
        buf[starter] = comp;
      } else {
        if (cls == 0) starter = w;
        last_class = cls;
        buf[w++] = ch;
      }
    }
    buf.resize(w);
  }
  std::string out;
  out.reserve(s.size());
  for (uint32_t cp : buf) append_utf8(out, cp);
  return out;
}

}  // namespace grpo::tok
