#pragma once
// Step metrics of tool-integrated rollouts (rollout.tools, issue 21): how often the policy calls a
// tool, how the calls end, and whether the completions that use one earn more.
#include <vector>

#include "grpo/rollout/completion.h"
#include "grpo/train/step_metrics.h"

namespace grpo::train {

/// Adds, over `completions` ([N]) and their total rewards `reward` ([N], the RewardSet's `total`):
///   tools/calls_per_completion          mean of Completion::tool_calls
///   tools/frac_completions_using_tool   fraction with tool_calls > 0
///   tools/errors, tools/timeouts        sums of tool_errors / tool_timeouts (counts of calls)
///   tools/injected_tokens               mean tokens per completion a tool injected (not trained on)
///   reward/with_tool, reward/without_tool  mean reward of the completions with (without) a call;
///                                        omitted when no completion is in that set
/// Masked rows (`valid` 0, their reward NaN) are left out of the two reward means.
void put_tool_metrics(StepMetrics& m, const std::vector<rollout::Completion>& completions,
                      const std::vector<float>& reward, const std::vector<uint8_t>& masked);

}  // namespace grpo::train
