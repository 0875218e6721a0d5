#pragma once
// Test doubles of tok::Tokenizer with decode rules simple enough to check by hand.
#include <string>
#include <vector>

#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"

namespace grpo::rollout::testing {

/// Replaces every byte that does not start or continue a valid UTF-8 sequence by U+FFFD, one per
/// bad byte (enough for tests: the real tokenizers follow the same "invalid -> U+FFFD" rule).
inline std::string sanitize_utf8(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

/// ids 0..255: the byte of that value (or, with `letters`, the letter 'a' + id % 26, so every
/// output decodes to plain ASCII); ids 256 .. vocab-1: special tokens "<sN>".
class FakeTokenizer : public tok::Tokenizer {
 public:
  explicit FakeTokenizer(int32_t vocab = 260, std::vector<int32_t> eos = {}, bool letters = false)
      : vocab_(vocab), letters_(letters) {
    special_.eos = std::move(eos);
  }
  void set_pad(int32_t id) { special_.pad = id; }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override {
    std::string s;
    for (int32_t id : ids) {
      GRPO_REQUIRE(id >= 0 && id < vocab_, "fake tokenizer: id ", id, " out of range");
      if (id >= 256) {
        if (!skip_special) s += "<s" + std::to_string(id) + ">";
      } else {
        s += letters_ ? static_cast<char>('a' + id % 26) : static_cast<char>(id);
      }
    }
    return sanitize_utf8(s);
  }
  int32_t vocab_size() const override { return vocab_; }
  std::string piece(int32_t id) const override { return decode(std::vector<int32_t>{id}); }
  std::optional<int32_t> find_token(std::string_view) const override { return std::nullopt; }
  bool is_special(int32_t id) const override { return id >= 256; }
  std::string describe() const override { return "fake"; }

 private:
  int32_t vocab_;
  bool letters_;
};

/// Sentencepiece-like: id i is the word "▁w<i>" (written " w<i>"); decode joins the words and drops
/// the leading space of the result, so decode(a) + decode(b) != decode(a, b).
class SpaceTokenizer : public tok::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view) const override { return {}; }
  std::string decode(std::span<const int32_t> ids, bool = false) const override {
    std::string s;
    for (int32_t id : ids) s += " w" + std::to_string(id);
    return s.empty() ? s : s.substr(1);
  }
  int32_t vocab_size() const override { return 100; }
  std::string piece(int32_t id) const override { return " w" + std::to_string(id); }
  std::optional<int32_t> find_token(std::string_view) const override { return std::nullopt; }
  bool is_special(int32_t) const override { return false; }
  std::string describe() const override { return "space"; }
};

}  // namespace grpo::rollout::testing
