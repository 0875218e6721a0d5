// Language consistency: fractions counted by hand (words: a run of letters of one script, or one
// CJK character).
#include <gtest/gtest.h>

#include "grpo/reward/language_consistency_reward.h"
#include "grpo/util/error.h"

namespace grpo::reward {
namespace {

TEST(ScriptFraction, HandCountedWords) {
  EXPECT_FLOAT_EQ(script_fraction("the cat sat", Script::LATIN), 1.0f);
  // 2 Latin words + 2 CJK characters = 4 words, 2 Latin.
  EXPECT_FLOAT_EQ(script_fraction("hello world 你好", Script::LATIN), 0.5f);
  EXPECT_FLOAT_EQ(script_fraction("hello world 你好", Script::CJK), 0.5f);
  // "привет мир" = 2 Cyrillic words, "ok" = 1 Latin: 2/3.
  EXPECT_FLOAT_EQ(script_fraction("привет мир ok", Script::CYRILLIC), 2.0f / 3.0f);
  // Arabic "مرحبا بالعالم" (2 words) + "x" (1): 2/3.
  EXPECT_FLOAT_EQ(script_fraction("مرحبا بالعالم x", Script::ARABIC), 2.0f / 3.0f);
  // Devanagari "नमस्ते दुनिया" with its vowel signs and virama inside the words: 2 words.
  EXPECT_FLOAT_EQ(script_fraction("नमस्ते दुनिया", Script::DEVANAGARI), 1.0f);
  // Digits, punctuation and math do not count: only "x" and "y" are words.
  EXPECT_FLOAT_EQ(script_fraction("x + 2 = y; 3.14 * 2 = 6.28 !!", Script::LATIN), 1.0f);
  // Latin accents are Latin: "café über" = 2 words.
  EXPECT_FLOAT_EQ(script_fraction("café über", Script::LATIN), 1.0f);
  // Greek counts as another script: "alpha" Latin, "λόγος" other -> 1/2.
  EXPECT_FLOAT_EQ(script_fraction("alpha λόγος", Script::LATIN), 0.5f);
  // Mixed script inside one token splits into words: "abcдеф" = 1 Latin + 1 Cyrillic.
  EXPECT_FLOAT_EQ(script_fraction("abcдеф", Script::LATIN), 0.5f);
}

TEST(ScriptFraction, LettersUnit) {
  // 3 Latin letters + 2 CJK = 5 letters.
  EXPECT_FLOAT_EQ(script_fraction("abc 你好", Script::LATIN, true), 0.6f);
}

TEST(ScriptFraction, EmptyAndLetterlessTextScoreZero) {
  EXPECT_FLOAT_EQ(script_fraction("", Script::LATIN), 0.0f);
  EXPECT_FLOAT_EQ(script_fraction("1 + 2 = 3 ... ??? 🙂", Script::LATIN), 0.0f);
}

TEST(ScriptFraction, InvalidUtf8IsSkipped) {
  // Stray continuation byte, truncated 3-byte sequence, overlong '/' (C0 AF), a surrogate
  // (ED A0 80) and 0xFF: none is a letter, so only "ok" and "fine" count.
  std::string s = "ok \x80 \xE4\xBD fine \xC0\xAF \xED\xA0\x80 \xFF";
  EXPECT_FLOAT_EQ(script_fraction(s, Script::LATIN), 1.0f);
  size_t i = 0;
  EXPECT_EQ(next_code_point("\xE4\xBD", i), U'\uFFFD');
  EXPECT_EQ(i, 1u);
  i = 0;
  EXPECT_EQ(next_code_point("\xE4\xBD\xA0", i), U'\u4F60');  // 你
  EXPECT_EQ(i, 3u);
  i = 0;
  EXPECT_EQ(next_code_point("\xF0\x9F\x99\x82", i), U'\U0001F642');
}

TEST(LanguageConsistencyReward, MeasuresTheChainOfThoughtOnly) {
  LanguageConsistencyReward fn{config::LanguageConsistencyParams{}};
  RewardInput in;
  // CoT: "let me think 让我想想" = 3 Latin words + 4 CJK characters = 3/7; the answer is ignored.
  in.completion = "<think>let me think 让我想想</think><answer>答案是五</answer>";
  EXPECT_FLOAT_EQ(fn.score({in})[0], 3.0f / 7.0f);
  config::LanguageConsistencyParams p;
  p.script = "cjk";
  EXPECT_FLOAT_EQ(LanguageConsistencyReward{p}.score({in})[0], 4.0f / 7.0f);
  in.completion = "plain english without tags";
  EXPECT_FLOAT_EQ(fn.score({in})[0], 1.0f);
}

TEST(LanguageConsistencyReward, UnknownScriptIsAnInputError) {
  config::LanguageConsistencyParams p;
  p.script = "klingon";
  EXPECT_THROW(LanguageConsistencyReward{p}, InputError);
}

}  // namespace
}  // namespace grpo::reward
