// Advantages against TRL 1.16's formulas (tests/train/data/loss_refs.json, "advantage_cases") and
// hand-computed edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/train/advantages.h"
#include "grpo/util/error.h"

namespace {

using grpo::config::ScaleRewards;
using grpo::train::compute_advantages;

ScaleRewards scale_of(const std::string& s) {
  return s == "group" ? ScaleRewards::GROUP : s == "batch" ? ScaleRewards::BATCH : ScaleRewards::NONE;
}

TEST(Advantages, MatchTrl) {
  std::ifstream f(std::string(GRPO_SOURCE_DIR) + "/tests/train/data/loss_refs.json");
  auto refs = nlohmann::json::parse(f);
  for (const auto& c : refs["advantage_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<double> r;
    for (auto& v : c["rewards"]) r.push_back(v.is_null() ? std::nan("") : v.get<double>());
    const int64_t G = c["num_generations"];
    std::vector<int64_t> idx;
    for (size_t i = 0; i < r.size(); ++i) idx.push_back(static_cast<int64_t>(i) / G);
    auto res = compute_advantages(torch::tensor(r, torch::kFloat64), torch::tensor(idx), scale_of(c["scale_rewards"]));
    auto adv = res.advantages.to(torch::kFloat64);
    for (size_t i = 0; i < r.size(); ++i)  // returned as float32: 1e-6 relative (plus 1e-7 absolute near 0)
      EXPECT_NEAR(adv[i].item<double>(), c["advantages"][i].get<double>(),
                  1e-6 * std::abs(c["advantages"][i].get<double>()) + 1e-7) << i;
    EXPECT_NEAR(res.reward_mean, c["reward_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(res.reward_std, c["reward_std"].get<double>(), 1e-12);
    if (c["scale_rewards"] != "batch") EXPECT_NEAR(res.frac_zero_std, c["frac_zero_std"].get<double>(), 1e-12);
  }
}

TEST(Advantages, HandComputedSevenLowOneHigh) {
  // rewards [0.35 x7, 0.95]: mean 0.425; deviations -0.075 (x7), 0.525; sum of squares
  // 7 * 0.005625 + 0.275625 = 0.315; unbiased var 0.315 / 7 = 0.045; std = sqrt(0.045).
  std::vector<double> r(7, 0.35);
  r.push_back(0.95);
  auto res = compute_advantages(torch::tensor(r, torch::kFloat32), torch::zeros({8}, torch::kInt64), ScaleRewards::GROUP);
  const double denom = std::sqrt(0.045) + 1e-4;  // 0.2122320344
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(res.advantages[i].item<float>(), -0.075 / denom, 1e-6);  // -0.353387
  EXPECT_NEAR(res.advantages[7].item<float>(), 0.525 / denom, 1e-6);                              // 2.473710
  EXPECT_EQ(res.advantages.scalar_type(), torch::kFloat32);
  // Dr. GRPO (none): just the centred rewards.
  res = compute_advantages(torch::tensor(r, torch::kFloat32), torch::zeros({8}, torch::kInt64), ScaleRewards::NONE);
  EXPECT_NEAR(res.advantages[0].item<float>(), -0.075, 1e-7);
  EXPECT_NEAR(res.advantages[7].item<float>(), 0.525, 1e-7);
}

TEST(Advantages, AllEqualGivesExactZerosNeverNan) {
  // 0.35 is not exact in binary; a float mean of seven of them differs from 0.35 by rounding, and
  // rounding / 1e-4 would be a spurious non-zero advantage. Must be exactly 0.
  for (auto scale : {ScaleRewards::GROUP, ScaleRewards::BATCH, ScaleRewards::NONE}) {
    auto res = compute_advantages(torch::full({7}, 0.35f), torch::full({7}, 3, torch::kInt64), scale);
    EXPECT_EQ(res.advantages.abs().max().item<float>(), 0.0f);
    EXPECT_EQ(res.frac_zero_std, 1.0);
    EXPECT_TRUE(res.group_zero_std.all().item<bool>());
  }
}

TEST(Advantages, ZeroGroupBesideNormalGroupIdentifiedByIndexNotPosition) {
  // Groups interleaved in the batch: prompt 9 -> rewards 0,0,0,0 ; prompt 4 -> 1,0,0.5,1.
  auto rewards = torch::tensor({0.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 1.0}, torch::kFloat64);
  auto idx = torch::tensor({9, 4, 9, 4, 9, 4, 9, 4}, torch::kInt64);
  auto res = compute_advantages(rewards, idx, ScaleRewards::GROUP);
  // Group 4: mean 0.625, deviations .375 -.625 -.125 .375, ss = 0.1406+0.3906+0.0156+0.1406 = 0.6875,
  // std = sqrt(0.6875 / 3) = 0.478714.
  const double denom = std::sqrt(0.6875 / 3) + 1e-4;
  const double want[] = {0, 0.375 / denom, 0, -0.625 / denom, 0, -0.125 / denom, 0, 0.375 / denom};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(res.advantages[i].item<float>(), want[i], 1e-6) << i;
  EXPECT_EQ(res.frac_zero_std, 0.5);
  EXPECT_EQ(res.num_groups, 2);
  EXPECT_EQ(grpo::train::zero_variance_groups(rewards, idx), std::vector<int64_t>{9});
  // Dense group numbers follow ascending prompt index: 4 -> 0, 9 -> 1.
  EXPECT_TRUE(torch::equal(res.group_index, torch::tensor({1, 0, 1, 0, 1, 0, 1, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(res.group_zero_std, torch::tensor({false, true})));
}

TEST(Advantages, BadInputsRejected) {
  // A group of one completion has no baseline.
  try {
    compute_advantages(torch::tensor({1.0, 0.0, 1.0}), torch::tensor({0, 0, 1}), ScaleRewards::GROUP);
    FAIL();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("group of prompt_index 1 has a single completion"), std::string::npos);
  }
  EXPECT_THROW(compute_advantages(torch::tensor({1.0, 0.0}), torch::tensor({0, 0, 0}), ScaleRewards::GROUP),
               grpo::InputError);
  EXPECT_THROW(compute_advantages(torch::zeros({2, 2}), torch::zeros({2}, torch::kInt64), ScaleRewards::GROUP),
               grpo::InputError);
  EXPECT_THROW(compute_advantages(torch::zeros({2}), torch::zeros({2}), ScaleRewards::GROUP), grpo::InputError);
}

TEST(Advantages, NanMeanStdSkipsNanAndIsUnbiased) {
  // {1, NaN, 3, 5}: three values, mean 3, deviations -2 0 2, ss = 8, unbiased var 8 / 2 = 4, std 2.
  auto s = grpo::train::nan_mean_std({1.0, std::nan(""), 3.0, 5.0});
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.mean, 3.0);
  EXPECT_EQ(s.std, 2.0);
  // One value: a mean but no std; none: neither.
  s = grpo::train::nan_mean_std({std::nan(""), 0.25});
  EXPECT_EQ(s.count, 1);
  EXPECT_EQ(s.mean, 0.25);
  EXPECT_TRUE(std::isnan(s.std));
  s = grpo::train::nan_mean_std({});
  EXPECT_EQ(s.count, 0);
  EXPECT_TRUE(std::isnan(s.mean) && std::isnan(s.std));
  // The batch stats of compute_advantages are these: rewards {0, 1, NaN, 1} -> mean 2/3,
  // ss = 4/9 + 1/9 + 1/9 = 2/3, var 1/3.
  auto res = compute_advantages(torch::tensor({0.0, 1.0, std::nan(""), 1.0}), torch::tensor({0, 0, 1, 1}), ScaleRewards::GROUP);
  EXPECT_NEAR(res.reward_mean, 2.0 / 3, 1e-15);
  EXPECT_NEAR(res.reward_std, std::sqrt(1.0 / 3), 1e-15);
}

}  // namespace
