#pragma once
// `format`: does the completion follow the R1 template (DeepSeek-R1 paper, sec. 2.2.1, Table 1)
//   <think> reasoning </think> <answer> answer </answer>
#include <string_view>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// 1 when `completion` follows the template, else 0.
///  strict: after trimming whitespace the text is "<think>" R "</think>" WS "<answer>" A
///          "</answer>", each of the four tags appears exactly once, A is not blank; R may be empty
///          or span many lines; nothing but whitespace before, between the blocks or after.
///  soft:   "<think>", "</think>", "<answer>", "</answer>" all appear, in that order (anything may
///          surround them).
/// When `prompt` ends with "<think>" (templates that open the block for the model, e.g. TinyZero),
/// the completion is scored as if it started with "<think>".
float format_score(std::string_view prompt, std::string_view completion, const config::FormatParams& p);

/// The `format` reward function (never reports problems: a completion cannot be bad input).
class FormatReward : public RowRewardFunction {
 public:
  explicit FormatReward(config::FormatParams p);
  std::string name() const override { return "format"; }

 protected:
  float score_row(const RewardInput& row, std::string& problem) const override;

 private:
  config::FormatParams p_;
};

}  // namespace grpo::reward
