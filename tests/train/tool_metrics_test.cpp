// put_tool_metrics: the step metrics of tool-integrated rollouts, on a hand-made batch whose
// expected values are counted by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/train/tool_metrics.h"

namespace grpo::train {
namespace {

rollout::Completion comp(int calls, int errors, int timeouts, std::vector<uint8_t> mask) {
  rollout::Completion c;
  c.tool_calls = calls, c.tool_errors = errors, c.tool_timeouts = timeouts;
  c.tool_mask = std::move(mask);
  c.token_ids.assign(c.tool_mask.size(), 7);
  return c;
}

TEST(ToolMetrics, CountsCallsOutcomesAndRewardSplit) {
  const std::vector<rollout::Completion> cs = {
      comp(2, 1, 0, {0, 1, 1, 0, 1, 0}),  // 3 injected
      comp(1, 0, 1, {0, 0, 1, 1}),        // 2 injected
      comp(0, 0, 0, {0, 0, 0}),
      comp(0, 0, 0, {0}),
      comp(1, 0, 0, {0, 1}),              // masked row: counted in tool use, not in the reward split
  };
  const std::vector<float> reward = {1.0f, 0.5f, 0.25f, 0.0f, NAN};
  const std::vector<uint8_t> masked = {0, 0, 0, 0, 1};
  StepMetrics m;
  put_tool_metrics(m, cs, reward, masked);
  EXPECT_DOUBLE_EQ(m.value("tools/calls_per_completion"), 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.value("tools/frac_completions_using_tool"), 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.value("tools/errors"), 1.0);
  EXPECT_DOUBLE_EQ(m.value("tools/timeouts"), 1.0);
  EXPECT_DOUBLE_EQ(m.value("tools/injected_tokens"), 6.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.value("reward/with_tool"), 0.75);       // (1 + 0.5) / 2
  EXPECT_DOUBLE_EQ(m.value("reward/without_tool"), 0.125);   // (0.25 + 0) / 2
}

TEST(ToolMetrics, RewardSplitOmittedWhenASideIsEmpty) {
  StepMetrics m;
  put_tool_metrics(m, {comp(0, 0, 0, {0, 0})}, {1.0f}, {0});
  EXPECT_DOUBLE_EQ(m.value("tools/frac_completions_using_tool"), 0.0);
  EXPECT_DOUBLE_EQ(m.value("reward/without_tool"), 1.0);
  EXPECT_EQ(m.local().count("reward/with_tool"), 0u);
}

}  // namespace
}  // namespace grpo::train
