#include "grpo/train/tool_metrics.h"

#include <cmath>

#include "grpo/util/error.h"

namespace grpo::train {

void put_tool_metrics(StepMetrics& m, const std::vector<rollout::Completion>& completions,
                      const std::vector<float>& reward, const std::vector<uint8_t>& masked) {
  GRPO_REQUIRE(reward.size() == completions.size() && masked.size() == completions.size(), "put_tool_metrics: ",
               completions.size(), " completions, ", reward.size(), " rewards, ", masked.size(), " mask flags");
  if (completions.empty()) return;
  double calls = 0, using_tool = 0, errors = 0, timeouts = 0, injected = 0;
  double with_sum = 0, with_n = 0, without_sum = 0, without_n = 0;
  for (size_t i = 0; i < completions.size(); ++i) {
    const auto& c = completions[i];
    calls += c.tool_calls;
    using_tool += c.tool_calls > 0;
    errors += c.tool_errors;
    timeouts += c.tool_timeouts;
    for (uint8_t t : c.tool_mask) injected += t;
    if (masked[i] || !std::isfinite(reward[i])) continue;
    (c.tool_calls > 0 ? with_sum : without_sum) += reward[i];
    (c.tool_calls > 0 ? with_n : without_n) += 1;
  }
  const double n = static_cast<double>(completions.size());
  m.add_mean("tools/calls_per_completion", calls / n);
  m.add_mean("tools/frac_completions_using_tool", using_tool / n);
  m.add_sum("tools/errors", errors);
  m.add_sum("tools/timeouts", timeouts);
  m.add_mean("tools/injected_tokens", injected / n);
  if (with_n > 0) m.add_mean("reward/with_tool", with_sum, with_n);
  if (without_n > 0) m.add_mean("reward/without_tool", without_sum, without_n);
}

}  // namespace grpo::train
