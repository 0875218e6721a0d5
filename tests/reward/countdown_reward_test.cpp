// Countdown (TinyZero) cases; expected rewards computed by hand with exact fractions.
#include <gtest/gtest.h>

#include "grpo/reward/countdown_reward.h"

namespace grpo::reward {
namespace {

struct CountdownCase {
  const char* name;
  std::string completion;
  std::vector<int64_t> nums;
  int64_t target;
  float expected;
};

const std::vector<CountdownCase>& cases() {
  static const std::vector<CountdownCase> c = {
      {"correct", "<think>try</think><answer>(6 - 2) * 6</answer>", {2, 6, 6}, 24, 1},
      {"correct_no_think", "<answer>95 - 21 + 3</answer>", {21, 3, 95}, 77, 1},
      {"exact_division", "<answer>(8 / 3) * 3 * 1</answer>", {1, 3, 3, 8}, 8, 1},  // 8/3*3 = 8 exactly
      {"fraction_intermediate", "<answer>8 / (3 - 8 / 3)</answer>", {3, 3, 8, 8}, 24, 1},  // 8/(1/3) = 24
      {"wrong_value", "<answer>6 * 6 - 2</answer>", {2, 6, 6}, 24, 0},
      {"number_missing", "<answer>6 * 4</answer>", {2, 6, 4}, 24, 0},
      {"number_used_twice", "<answer>6 * 2 * 2</answer>", {2, 6}, 24, 0},
      {"number_not_given", "<answer>6 * 4</answer>", {6, 5}, 24, 0},
      {"division_by_zero", "<answer>5 / (3 - 3)</answer>", {5, 3, 3}, 1, 0},
      {"no_answer_tag", "(6 - 2) * 6", {2, 6, 6}, 24, 0},
      {"empty_answer", "<answer></answer>", {2, 6, 6}, 24, 0},
      {"letters_rejected", "<answer>import os</answer>", {2, 6, 6}, 24, 0},
      {"power_rejected", "<answer>2 ** 6</answer>", {2, 6}, 64, 0},
      {"unary_minus_rejected", "<answer>-2 + 26</answer>", {2, 26}, 24, 0},
      {"decimal_rejected", "<answer>2.0 * 12</answer>", {2, 12}, 24, 0},
      {"unbalanced", "<answer>(2 * 12</answer>", {2, 12}, 24, 0},
      {"with_equals_target", "<answer>2 * 12 = 24</answer>", {2, 12}, 24, 1},
      {"with_equals_wrong", "<answer>2 * 12 = 25</answer>", {2, 12}, 24, 0},
      {"last_answer_wins", "<answer>1 + 1</answer> no: <answer>2 * 12</answer>", {2, 12}, 24, 1},
      {"answer_only_in_think", "<think><answer>2 * 12</answer></think>", {2, 12}, 24, 0},
      {"non_integer_result", "<answer>7 / 2</answer>", {7, 2}, 3, 0},
      {"whitespace_and_newlines", "<answer>\n ( 2 +\n 10 ) * 2 \n</answer>", {2, 10, 2}, 24, 1},
      {"huge_literal_overflow", "<answer>99999999999999999999999 * 1</answer>", {1}, 1, 0},
      {"deep_nesting", "<answer>" + std::string(200, '(') + "1" + std::string(200, ')') + "</answer>", {1}, 1, 0},
  };
  return c;
}

class CountdownTable : public ::testing::TestWithParam<size_t> {};

TEST_P(CountdownTable, MatchesHandCheckedValue) {
  const auto& c = cases()[GetParam()];
  EXPECT_EQ(countdown_score(c.completion, c.nums, c.target, config::CountdownParams{}), c.expected) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, CountdownTable, ::testing::Range<size_t>(0, cases().size()),
                         [](const auto& info) { return std::string(cases()[info.param].name); });

TEST(Countdown, EvaluatesExactly) {
  auto e = evaluate_countdown("8 / (3 - 8 / 3)");
  ASSERT_EQ(e.status, CountdownEval::OK) << e.error;
  EXPECT_EQ(e.value, (Rational{24, 1}));
  EXPECT_EQ(e.numbers, (std::vector<int64_t>{8, 3, 8, 3}));
  e = evaluate_countdown("1 / 3 + 1 / 6");
  EXPECT_EQ(e.value, (Rational{1, 2}));
  EXPECT_EQ(evaluate_countdown("4 / (2 - 2)").status, CountdownEval::DIVISION_BY_ZERO);
  EXPECT_EQ(evaluate_countdown("4 +").status, CountdownEval::SYNTAX_ERROR);
}

TEST(Countdown, FormatScoreForWrongButWellFormedEquations) {
  config::CountdownParams p;
  p.format_score = 0.1;  // TinyZero's value
  EXPECT_FLOAT_EQ(countdown_score("<answer>6 * 6 - 2</answer>", {2, 6, 6}, 24, p), 0.1f);
  EXPECT_FLOAT_EQ(countdown_score("<answer>5 / (3 - 3)</answer>", {5, 3, 3}, 1, p), 0.0f);  // 1/0: nothing
  EXPECT_FLOAT_EQ(countdown_score("no tags", {5, 3, 3}, 1, p), 0.0f);
}

TEST(CountdownReward, ReadsFieldsAndReportsBadRows) {
  CountdownReward fn{config::CountdownParams{}};
  std::vector<RewardInput> rows(4);
  for (auto& r : rows) r.completion = "<answer>(6 - 2) * 6</answer>";
  rows[0].reference = {{"nums", {2, 6, 6}}, {"target", 24}};
  rows[1].reference = {{"nums", {2, 6, 6}}, {"target", "24"}};
  rows[2].reference = {{"nums", "2 6 6"}, {"target", 24}};
  rows[3].reference = {{"nums", {2, 6, 6}}};
  auto s = fn.score_batch(rows);
  EXPECT_EQ(s.values, (std::vector<float>{1, 1, 0, 0}));
  EXPECT_TRUE(s.problems[0].empty());
  EXPECT_TRUE(s.problems[1].empty());
  EXPECT_NE(s.problems[2].find("nums"), std::string::npos);
  EXPECT_NE(s.problems[3].find("target"), std::string::npos);
}

}  // namespace
}  // namespace grpo::reward
