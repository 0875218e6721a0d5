// Pre-tokenizer splits and UTF-8 helpers on hand-checked cases (the bulk parity check against HF
// `tokenizers` is bpe_parity_test.cpp). Expected splits were worked out from the regexes in
// pretokenizer.h by hand and confirmed with tokenizers' pre_tokenize_str.
#include "grpo/tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <set>

#include "grpo/tokenizer/byte_level.h"
#include "grpo/tokenizer/unicode.h"

namespace {

using grpo::tok::SplitPattern;
using V = std::vector<std::string>;

V split(std::string_view s, SplitPattern p) {
  V out;
  for (auto v : grpo::tok::split_words(s, p)) out.emplace_back(v);
  return out;
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("Hello world", SplitPattern::GPT2), (V{"Hello", " world"}));
  EXPECT_EQ(split("it's  ok  ", SplitPattern::GPT2), (V{"it", "'s", " ", " ok", "  "}));
  EXPECT_EQ(split("IT'S", SplitPattern::GPT2), (V{"IT", "'", "S"}));  // case-sensitive contractions
  EXPECT_EQ(split("x   y", SplitPattern::GPT2), (V{"x", "  ", " y"}));  // \s+(?!\S) leaves one space
  EXPECT_EQ(split("a\n\nb", SplitPattern::GPT2), (V{"a", "\n", "\n", "b"}));  // " ?" takes a space, never a newline
  EXPECT_EQ(split("12345 678", SplitPattern::GPT2), (V{"12345", " 678"}));
  EXPECT_EQ(split("f(x)=1;", SplitPattern::GPT2), (V{"f", "(", "x", ")=", "1", ";"}));
  EXPECT_EQ(split("", SplitPattern::GPT2), V{});
}

TEST(PreTokenizer, Llama3AndQwen2) {
  EXPECT_EQ(split("12345", SplitPattern::LLAMA3), (V{"123", "45"}));
  EXPECT_EQ(split("12345", SplitPattern::QWEN2), (V{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split("IT'S", SplitPattern::QWEN2), (V{"IT", "'S"}));  // (?i:...) contractions
  EXPECT_EQ(split("x'ſ", SplitPattern::QWEN2), (V{"x", "'ſ"}));   // long s folds to s
  EXPECT_EQ(split("\tHello", SplitPattern::QWEN2), (V{"\tHello"}));  // [^\r\n\p{L}\p{N}]?\p{L}+
  EXPECT_EQ(split("a \n\n b", SplitPattern::QWEN2), (V{"a", " \n\n", " b"}));  // \s*[\r\n]+
  EXPECT_EQ(split("x ...\n\ny", SplitPattern::LLAMA3), (V{"x", " ...\n\n", "y"}));
  EXPECT_EQ(split("a  ", SplitPattern::LLAMA3), (V{"a", "  "}));
  EXPECT_EQ(split("\u00a0b", SplitPattern::QWEN2), (V{"\u00a0b"}));  // NBSP is \s, not \r\n
}

TEST(PreTokenizer, DigitsAndRegexLookup) {
  auto d = grpo::tok::split_digits("ab12c٣", true);
  EXPECT_EQ(V(d.begin(), d.end()), (V{"ab", "1", "2", "c", "٣"}));
  d = grpo::tok::split_digits("ab12c", false);
  EXPECT_EQ(V(d.begin(), d.end()), (V{"ab", "12", "c"}));
  for (auto p : {SplitPattern::GPT2, SplitPattern::LLAMA3, SplitPattern::QWEN2})
    EXPECT_EQ(grpo::tok::split_pattern_from_regex(grpo::tok::split_pattern_regex(p)), p);
  EXPECT_FALSE(grpo::tok::split_pattern_from_regex("\\w+").has_value());
}

TEST(Unicode, ClassesAndLossyUtf8) {
  using namespace grpo::tok;
  EXPECT_TRUE(is_letter(U'é'));
  EXPECT_TRUE(is_letter(U'中'));
  EXPECT_FALSE(is_letter(0x0301));  // combining acute: category Mn
  EXPECT_TRUE(is_number(U'٣'));
  EXPECT_TRUE(is_number(U'Ⅻ'));     // Nl
  EXPECT_TRUE(is_number(U'²'));     // No
  EXPECT_TRUE(is_whitespace(0x3000));
  EXPECT_FALSE(is_whitespace(0x200b));
  EXPECT_FALSE(is_whitespace(0x1c));
  // from_utf8_lossy: one U+FFFD per maximal invalid subsequence (hand-checked against Rust docs).
  const std::string R = "\xef\xbf\xbd";
  EXPECT_EQ(utf8_lossy("ok"), "ok");
  EXPECT_EQ(utf8_lossy("a\xff" "b"), "a" + R + "b");
  EXPECT_EQ(utf8_lossy("\xe2\x82"), R);                 // truncated 3-byte sequence: one
  EXPECT_EQ(utf8_lossy("\xe2\x82" "a"), R + "a");
  EXPECT_EQ(utf8_lossy("\xc0\xaf"), R + R);              // overlong lead: two
  EXPECT_EQ(utf8_lossy("\xed\xa0\x80"), R + R + R);      // surrogate: three
  EXPECT_EQ(utf8_lossy("\xf0\x9f\x98"), R);              // truncated emoji: one
  EXPECT_EQ(utf8_lossy("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
  // GPT-2 byte map: space -> U+0120, printable ASCII to itself, 256 distinct code points.
  EXPECT_EQ(byte_to_unicode(' '), char32_t(0x120));
  EXPECT_EQ(byte_to_unicode('A'), char32_t('A'));
  EXPECT_EQ(unicode_to_byte(0x120), ' ');
  EXPECT_EQ(unicode_to_byte(U'中'), -1);
  std::set<char32_t> all;
  for (int b = 0; b < 256; ++b) all.insert(byte_to_unicode(static_cast<uint8_t>(b)));
  EXPECT_EQ(all.size(), 256u);
}

}  // namespace
