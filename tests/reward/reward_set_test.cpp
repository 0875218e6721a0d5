// Composition from the YAML config: per-function values, weighted total, reported problems.
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/config/config.h"
#include "grpo/reward/registry.h"
#include "grpo/reward/reward_set.h"
#include "grpo/reward/language_consistency_reward.h"
#include "grpo/util/error.h"

namespace grpo::reward {
namespace {

config::RewardConfig reward_config(const std::string& functions_yaml) {
  return config::load_config_string("reward:\n  functions: " + functions_yaml + "\n").config.reward;
}

TEST(RewardSet, WeightedSumFromYaml) {
  auto set = RewardSet::from_config(
      reward_config("[{name: format, weight: 0.2}, {name: math_answer, weight: 1.0}]"));
  std::vector<RewardInput> rows(3);
  rows[0].completion = "<think>2+3</think><answer>\\boxed{5}</answer>";
  rows[0].reference = {{"answer", "5"}};
  rows[1].completion = "\\boxed{5}";
  rows[1].reference = {{"answer", "5"}};
  rows[2].completion = "<think>x</think><answer>5</answer>";
  rows[2].reference = {{"answer", "\\frac{"}};
  auto r = set.score(rows);
  ASSERT_EQ(r.names, (std::vector<std::string>{"format", "math_answer"}));
  EXPECT_EQ(r.per_function[0], (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(r.per_function[1], (std::vector<float>{1, 1, 0}));
  EXPECT_FLOAT_EQ(r.total[0], 1.2f);
  EXPECT_FLOAT_EQ(r.total[1], 1.0f);
  EXPECT_FLOAT_EQ(r.total[2], 0.2f);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].row, 2u);
  EXPECT_EQ(r.problems[0].function, "math_answer");
  EXPECT_EQ(r.masked, (std::vector<uint8_t>{0, 0, 0}));
}

TEST(RewardSet, RepeatedKindsGetDistinctNamesAndParams) {
  auto set = RewardSet::from_config(reward_config(
      "[{name: format, weight: 1.0, mode: strict}, {name: format, weight: 0.5, mode: soft}]"));
  EXPECT_EQ(set.names(), (std::vector<std::string>{"format", "format_2"}));
  RewardInput in;
  in.completion = "hi <think>a</think><answer>1</answer>";  // soft yes, strict no
  auto r = set.score({in});
  EXPECT_EQ(r.per_function[0][0], 0.0f);
  EXPECT_EQ(r.per_function[1][0], 1.0f);
  EXPECT_FLOAT_EQ(r.total[0], 0.5f);
}

TEST(RewardSet, CosineLengthBorrowsMathParams) {
  auto set = RewardSet::from_config(reward_config(
      "[{name: math_answer, weight: 0.0, reference_field: sol}, "
      "{name: length, weight: 1.0, mode: cosine, max_length: 100}]"));
  RewardInput in;
  in.completion = "\\boxed{3}";
  in.completion_tokens = 0;  // 9 bytes -> 3 tokens
  in.reference = {{"sol", "3"}};
  auto r = set.score({in});
  EXPECT_NEAR(r.total[0], 1.0 + 0.5 * (1.0 + std::cos(M_PI * 0.03)), 1e-6);
}

TEST(RewardSet, EmptyOrUnavailableFunctionsAreInputErrors) {
  EXPECT_THROW(RewardSet::from_config(config::RewardConfig{}), InputError);
  if (!has_reward_factory(config::RewardKind::CODE)) {
    try {
      RewardSet::from_config(reward_config("[{name: code, weight: 1.0}]"));
      FAIL() << "expected InputError";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("code"), std::string::npos) << e.what();
    }
  }
  try {
    RewardSet::from_config(reward_config("[{name: math_answer, weight: 1.0, answer_regex: '(oops'}]"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("reward.functions.0"), std::string::npos) << e.what();
  }
}

TEST(RewardRegistry, CustomFactoryIsUsed) {
  struct Constant : RowRewardFunction {
    std::string name() const override { return "constant"; }
    float score_row(const RewardInput&, std::string&) const override { return 0.25f; }
  };
  // LANGUAGE_CONSISTENCY is replaced for this test and restored afterwards.
  register_reward_factory(config::RewardKind::LANGUAGE_CONSISTENCY,
                          [](const auto&, const auto&) { return std::make_unique<Constant>(); });
  auto set = RewardSet::from_config(reward_config("[{name: language_consistency, weight: 2.0}]"));
  RewardInput in;
  EXPECT_FLOAT_EQ(set.score({in}).total[0], 0.5f);
  register_reward_factory(config::RewardKind::LANGUAGE_CONSISTENCY, [](const auto& e, const auto&) {
    return std::make_unique<LanguageConsistencyReward>(e.language_consistency);
  });
}

}  // namespace
}  // namespace grpo::reward
