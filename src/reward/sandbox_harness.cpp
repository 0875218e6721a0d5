#include "grpo/reward/sandbox_harness.h"

#include <cstddef>
#include <random>
#include <sstream>

namespace grpo::reward {

namespace sandbox_detail {
// src/reward/sandbox_harness.py, compiled in at build time (src/reward/embed_file.cmake).
extern const unsigned char kSandboxHarnessPy[];
extern const std::size_t kSandboxHarnessPySize;
}  // namespace sandbox_detail

const std::string& python_assert_harness() {
  static const std::string src(reinterpret_cast<const char*>(sandbox_detail::kSandboxHarnessPy),
                               sandbox_detail::kSandboxHarnessPySize);
  return src;
}

std::optional<HarnessVerdict> parse_harness_verdict(std::string_view out, std::string_view nonce, int expected_total) {
  if (nonce.empty()) return std::nullopt;
  std::istringstream is{std::string(out)};
  std::string line;
  while (std::getline(is, line)) {
    std::istringstream ls(line);
    std::string tag, n, bits;
    long long passed = -1, total = -1;
    if (!(ls >> tag >> n >> passed >> total) || tag != "GRPO-VERDICT" || n != nonce) continue;
    ls >> bits;
    if (total != expected_total || passed < 0 || passed > total || bits.size() != static_cast<size_t>(total))
      return std::nullopt;
    HarnessVerdict v;
    v.total = static_cast<int>(total);
    int count = 0;
    for (char c : bits) {
      if (c != '0' && c != '1') return std::nullopt;
      v.per_test.push_back(c == '1');
      count += c == '1';
    }
    if (count != passed) return std::nullopt;
    v.passed = count;
    return v;
  }
  return std::nullopt;
}

std::string make_nonce() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 4; ++i) {
    uint32_t x = rd();
    for (int k = 0; k < 8; ++k) s += hex[(x >> (4 * k)) & 15];
  }
  return s;
}

}  // namespace grpo::reward
