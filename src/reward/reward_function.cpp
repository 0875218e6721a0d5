#include "grpo/reward/reward_function.h"

#include <cmath>
#include <exception>

#include "grpo/util/strings.h"

namespace grpo::reward {

RewardScores RowRewardFunction::score_batch(const std::vector<RewardInput>& batch) const {
  RewardScores out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    try {
      float v = score_row(batch[i], out.problems[i]);
      out.values[i] = std::isfinite(v) ? v : 0.0f;
      if (!std::isfinite(v) && out.problems[i].empty()) out.problems[i] = "non-finite reward replaced by 0";
    } catch (const std::exception& e) {
      // One odd row must not kill a training step: it scores 0 and is counted.
      out.values[i] = 0.0f;
      out.problems[i] = std::string("scoring failed: ") + e.what();
    }
  }
  return out;
}

void set_tool_output_markers(RewardInput& row, const config::ToolsConfig& tools) {
  if (!tools.on()) return;
  row.tool_output_open = std::string(trim(tools.output_prefix));
  row.tool_output_close = std::string(trim(tools.output_suffix));
}

}  // namespace grpo::reward
