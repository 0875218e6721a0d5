// Length rewards: DAPO eq. 13 and the cosine reward of Yeo et al. 2025, values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/reward/length_reward.h"
#include "grpo/reward/math_answer_reward.h"
#include "grpo/util/error.h"

namespace grpo::reward {
namespace {

TEST(OverlongPenalty, DapoEquation13) {
  // L_max = 256, L_cache = 64: no penalty up to 192, linear to -1 at 256, -1 beyond.
  EXPECT_FLOAT_EQ(overlong_penalty(0, 256, 64), 0.0f);
  EXPECT_FLOAT_EQ(overlong_penalty(192, 256, 64), 0.0f);
  EXPECT_FLOAT_EQ(overlong_penalty(193, 256, 64), -1.0f / 64.0f);
  EXPECT_FLOAT_EQ(overlong_penalty(224, 256, 64), -0.5f);
  EXPECT_FLOAT_EQ(overlong_penalty(256, 256, 64), -1.0f);
  EXPECT_FLOAT_EQ(overlong_penalty(257, 256, 64), -1.0f);
  EXPECT_FLOAT_EQ(overlong_penalty(100000, 256, 64), -1.0f);
  // No buffer: a step at L_max.
  EXPECT_FLOAT_EQ(overlong_penalty(100, 100, 0), 0.0f);
  EXPECT_FLOAT_EQ(overlong_penalty(101, 100, 0), -1.0f);
}

TEST(CosineLengthReward, YeoEtAlEquation1) {
  config::LengthParams p;  // r0c = 2, rLc = 1, r0w = -10, rLw = 0, re = -10
  EXPECT_FLOAT_EQ(cosine_length_reward(0, 100, true, p), 2.0f);
  EXPECT_FLOAT_EQ(cosine_length_reward(50, 100, true, p), 1.5f);             // cos(pi/2) = 0
  EXPECT_NEAR(cosine_length_reward(25, 100, true, p), 1.0 + 0.5 * (1.0 + std::sqrt(0.5)), 1e-6);
  EXPECT_FLOAT_EQ(cosine_length_reward(0, 100, false, p), -10.0f);
  EXPECT_FLOAT_EQ(cosine_length_reward(50, 100, false, p), -5.0f);
  EXPECT_NEAR(cosine_length_reward(99, 100, false, p), -5.0 * (1.0 + std::cos(M_PI * 0.99)), 1e-5);
  EXPECT_FLOAT_EQ(cosine_length_reward(100, 100, true, p), -10.0f);  // truncated: r_e
  EXPECT_FLOAT_EQ(cosine_length_reward(150, 100, false, p), -10.0f);
}

TEST(LengthReward, TokenCountOrBytesOverFour) {
  RewardInput in;
  in.completion = "0123456789";  // 10 bytes -> ceil(10/4) = 3 tokens
  EXPECT_EQ(completion_length(in), 3);
  in.completion_tokens = 7;
  EXPECT_EQ(completion_length(in), 7);
  in.completion.clear();
  in.completion_tokens = 0;
  EXPECT_EQ(completion_length(in), 0);
}

TEST(LengthReward, OverlongFunctionUsesTokenCounts) {
  config::LengthParams p;
  p.max_length = 10;
  p.buffer_length = 4;
  LengthReward fn(p, nullptr);
  std::vector<RewardInput> rows(3);
  rows[0].completion_tokens = 6;   // 0
  rows[1].completion_tokens = 8;   // (6 - 8) / 4 = -0.5
  rows[2].completion = std::string(48, 'x');  // 12 tokens estimated: -1
  EXPECT_EQ(fn.score(rows), (std::vector<float>{0.0f, -0.5f, -1.0f}));
}

TEST(LengthReward, CosineUsesCorrectness) {
  config::LengthParams p;
  p.mode = config::LengthMode::COSINE;
  p.max_length = 100;
  LengthReward fn(p, std::make_unique<MathAnswerReward>(config::MathAnswerParams{}));
  std::vector<RewardInput> rows(2);
  rows[0].completion = "\\boxed{4}";
  rows[1].completion = "\\boxed{5}";
  for (auto& r : rows) {
    r.reference = {{"answer", "4"}};
    r.completion_tokens = 50;
  }
  EXPECT_EQ(fn.score(rows), (std::vector<float>{1.5f, -5.0f}));
}

TEST(LengthReward, BadParamsAreInputErrors) {
  config::LengthParams p;
  p.max_length = 10;
  p.buffer_length = 11;
  EXPECT_THROW(LengthReward(p, nullptr), InputError);
  p.buffer_length = 2;
  p.mode = config::LengthMode::COSINE;
  EXPECT_THROW(LengthReward(p, nullptr), InputError);
}

}  // namespace
}  // namespace grpo::reward
