// Table-driven cases for the `format` reward. Every expected value is decided by hand from the
// rule in format_reward.h (strict: exactly one <think>..</think> then one non-blank
// <answer>..</answer>, only whitespace outside; soft: the four tags in order).
#include <gtest/gtest.h>

#include <string>

#include "grpo/reward/format_reward.h"
#include "grpo/util/error.h"

namespace grpo::reward {
namespace {

using config::FormatMode;

struct FormatCase {
  const char* name;
  FormatMode mode;
  std::string prompt;
  std::string completion;
  float expected;
};

std::string long_think() {
  std::string s = "<think>";
  for (int i = 0; i < 10000; ++i) s += "step " + std::to_string(i) + ": 2 + 2 = 4\n";
  return s + "</think><answer>4</answer>";
}

const std::vector<FormatCase>& cases() {
  static const std::vector<FormatCase> c = {
      // strict
      {"strict_basic", FormatMode::STRICT, "", "<think>reasoning</think><answer>42</answer>", 1},
      {"strict_multiline", FormatMode::STRICT, "", "<think>\nline 1\nline 2\n\nline 4\n</think>\n<answer>\n42\n</answer>", 1},
      {"strict_outer_whitespace", FormatMode::STRICT, "", "  <think>a</think>  <answer>b</answer>  \n", 1},
      {"strict_empty_think", FormatMode::STRICT, "", "<think></think><answer>5</answer>", 1},
      {"strict_blank_answer", FormatMode::STRICT, "", "<think>a</think><answer>   </answer>", 0},
      {"strict_empty_answer", FormatMode::STRICT, "", "<think>a</think><answer></answer>", 0},
      {"strict_text_between", FormatMode::STRICT, "", "<think>a</think>text<answer>5</answer>", 0},
      {"strict_text_before", FormatMode::STRICT, "", "Sure! <think>a</think><answer>5</answer>", 0},
      {"strict_text_after", FormatMode::STRICT, "", "<think>a</think><answer>5</answer> done", 0},
      {"strict_period_after", FormatMode::STRICT, "", "<think>a</think><answer>5</answer>.", 0},
      {"strict_wrong_order", FormatMode::STRICT, "", "<answer>5</answer><think>a</think>", 0},
      {"strict_think_only", FormatMode::STRICT, "", "<think>a</think>", 0},
      {"strict_answer_only", FormatMode::STRICT, "", "<answer>5</answer>", 0},
      {"strict_empty_completion", FormatMode::STRICT, "", "", 0},
      {"strict_whitespace_completion", FormatMode::STRICT, "", " \n\t ", 0},
      {"strict_duplicate_open_think", FormatMode::STRICT, "", "<think>a<think>b</think><answer>5</answer>", 0},
      {"strict_duplicate_close_think", FormatMode::STRICT, "", "<think>a</think></think><answer>5</answer>", 0},
      {"strict_two_answers", FormatMode::STRICT, "", "<think>a</think><answer>5</answer><answer>6</answer>", 0},
      {"strict_extra_close_answer", FormatMode::STRICT, "", "<think>a</think><answer>5</answer></answer>", 0},
      {"strict_answer_tags_inside_think", FormatMode::STRICT, "",
       "<think>I will write <answer>x</answer> later</think><answer>5</answer>", 0},
      {"strict_think_inside_answer", FormatMode::STRICT, "", "<think>a</think><answer><think>b</think></answer>", 0},
      {"strict_unclosed_answer", FormatMode::STRICT, "", "<think>a</think><answer>5", 0},
      {"strict_unclosed_think", FormatMode::STRICT, "", "<think>a<answer>5</answer>", 0},
      {"strict_blank_lines_between", FormatMode::STRICT, "", "<think>a</think>\n\n<answer>5</answer>", 1},
      {"strict_trailing_newlines", FormatMode::STRICT, "", "<think>a</think><answer>5</answer>\n\n\n", 1},
      {"strict_tabs", FormatMode::STRICT, "", "\t<think>\t</think>\t<answer>x</answer>\t", 1},
      {"strict_blank_multiline_answer", FormatMode::STRICT, "", "<think>a</think>\n<answer>\n\n</answer>", 0},
      {"strict_uppercase_tags", FormatMode::STRICT, "", "<THINK>a</THINK><ANSWER>5</ANSWER>", 0},
      {"strict_tag_with_space", FormatMode::STRICT, "", "<think >a</think><answer>5</answer>", 0},
      {"strict_utf8_content", FormatMode::STRICT, "", "<think>数学推理 — шаг</think><answer>五</answer>", 1},
      {"strict_prompt_opens_think", FormatMode::STRICT, "User: solve.\nAssistant: <think>", "reasoning</think><answer>5</answer>", 1},
      {"strict_prompt_opens_think_newline", FormatMode::STRICT, "Assistant: <think>\n", "a</think> <answer>5</answer>", 1},
      {"strict_prompt_opens_think_model_repeats", FormatMode::STRICT, "Assistant: <think>", "<think>a</think><answer>5</answer>", 0},
      {"strict_close_without_open", FormatMode::STRICT, "Assistant:", "a</think><answer>5</answer>", 0},
      {"strict_long_think", FormatMode::STRICT, "", long_think(), 1},
      {"strict_answer_multiline_content", FormatMode::STRICT, "", "<think>x</think><answer>line1\nline2</answer>", 1},
      {"strict_markdown_around", FormatMode::STRICT, "", "```\n<think>a</think><answer>5</answer>\n```", 0},
      // soft
      {"soft_basic", FormatMode::SOFT, "", "<think>a</think><answer>5</answer>", 1},
      {"soft_text_around", FormatMode::SOFT, "", "Sure! <think>a</think> then <answer>5</answer> done", 1},
      {"soft_wrong_order", FormatMode::SOFT, "", "<answer>5</answer><think>a</think>", 0},
      {"soft_think_only", FormatMode::SOFT, "", "<think>a</think>", 0},
      {"soft_answer_inside_think", FormatMode::SOFT, "", "<think>a<answer>5</answer></think>", 0},
      {"soft_empty", FormatMode::SOFT, "", "", 0},
      {"soft_unclosed_answer", FormatMode::SOFT, "", "<think>a</think><answer>5", 0},
      {"soft_empty_blocks", FormatMode::SOFT, "", "<think></think><answer></answer>", 1},
      {"soft_two_answers", FormatMode::SOFT, "", "<think>a</think><answer>1</answer><answer>2</answer>", 1},
      {"soft_prompt_opens_think", FormatMode::SOFT, "Assistant: <think>", "a</think><answer>5</answer>", 1},
      {"soft_close_before_open", FormatMode::SOFT, "", "</think><think><answer></answer>", 0},
      {"soft_multiline", FormatMode::SOFT, "", "intro\n<think>\nx\n</think>\nmiddle\n<answer>\n1\n</answer>\nbye", 1},
  };
  return c;
}

class FormatTable : public ::testing::TestWithParam<size_t> {};

TEST_P(FormatTable, MatchesHandCheckedValue) {
  const FormatCase& c = cases()[GetParam()];
  config::FormatParams p;
  p.mode = c.mode;
  EXPECT_EQ(format_score(c.prompt, c.completion, p), c.expected) << c.name;
  // The function object gives the same value as the free function.
  FormatReward fn(p);
  RewardInput in;
  in.prompt = c.prompt;
  in.completion = c.completion;
  auto s = fn.score_batch({in});
  EXPECT_EQ(s.values.at(0), c.expected) << c.name;
  EXPECT_TRUE(s.problems.at(0).empty());
}

INSTANTIATE_TEST_SUITE_P(Cases, FormatTable, ::testing::Range<size_t>(0, cases().size()),
                         [](const auto& info) { return std::string(cases()[info.param].name); });

TEST(FormatReward, CustomTagNames) {
  config::FormatParams p;
  p.think_tag = "reasoning";
  p.answer_tag = "final";
  EXPECT_EQ(format_score("", "<reasoning>a</reasoning><final>5</final>", p), 1.0f);
  EXPECT_EQ(format_score("", "<think>a</think><answer>5</answer>", p), 0.0f);
  p.mode = FormatMode::SOFT;
  EXPECT_EQ(format_score("", "x <reasoning>a</reasoning> y <final>5</final>", p), 1.0f);
  EXPECT_EQ(format_score("", "x <final>5</final> <reasoning>a</reasoning>", p), 0.0f);
}

TEST(FormatReward, BadTagNamesAreInputErrors) {
  config::FormatParams p;
  p.think_tag = "";
  EXPECT_THROW(FormatReward{p}, InputError);
  p.think_tag = "my think";
  EXPECT_THROW(FormatReward{p}, InputError);
  p.think_tag = "<think>";
  EXPECT_THROW(FormatReward{p}, InputError);
  p.think_tag = "answer";
  EXPECT_THROW(FormatReward{p}, InputError);  // same as answer_tag
}

TEST(FormatReward, BatchKeepsOrder) {
  FormatReward fn(config::FormatParams{});
  std::vector<RewardInput> batch(3);
  batch[0].completion = "<think>a</think><answer>1</answer>";
  batch[1].completion = "nothing";
  batch[2].completion = "<think></think><answer>2</answer>";
  EXPECT_EQ(fn.score(batch), (std::vector<float>{1, 0, 1}));
}

}  // namespace
}  // namespace grpo::reward
