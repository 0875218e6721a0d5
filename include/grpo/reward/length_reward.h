#pragma once
// `length`: rewards that depend on the completion's length in tokens.
#include <cstdint>
#include <memory>
#include <string_view>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// DAPO's soft overlong punishment (Yu et al. 2025, DAPO, eq. 13), L = length in tokens:
///   0                                  if L <= L_max - L_cache
///   ((L_max - L_cache) - L) / L_cache  if L_max - L_cache < L <= L_max
///   -1                                 if L > L_max
/// With L_cache = 0 this is 0 up to L_max and -1 beyond. Requires L_cache <= L_max.
float overlong_penalty(int64_t length, int64_t max_length, int64_t buffer_length);

/// The cosine length reward (Yeo et al. 2025, "Demystifying Long Chain-of-Thought Reasoning in
/// LLMs", eq. 1): for L < L_max,
///   r = r_L + (r_0 - r_L) * (1 + cos(pi * L / L_max)) / 2
/// with (r_0, r_L) = (correct_short, correct_long) when correct and (wrong_short, wrong_long)
/// otherwise; L >= L_max gets `exceed` (the truncated completion).
float cosine_length_reward(int64_t length, int64_t max_length, bool correct, const config::LengthParams& p);

/// The completion's length in tokens: row.completion_tokens, or when that is 0 the byte length / 4
/// rounded up (about 4 bytes per token for English BPE vocabularies).
int64_t completion_length(const RewardInput& row);

/// The `length` reward. mode overlong: overlong_penalty(). mode cosine: cosine_length_reward(),
/// whose correctness comes from the function named by p.correctness (math_answer or countdown),
/// built with the parameters of that kind's first entry in the reward config (defaults if none):
/// correct when that function scores >= 1. Its problems are reported as this function's.
class LengthReward : public RewardFunction {
 public:
  /// Throws grpo::InputError when buffer_length > max_length, or for cosine mode when the
  /// correctness kind is not math_answer or countdown.
  LengthReward(config::LengthParams p, std::unique_ptr<RewardFunction> correctness);
  std::string name() const override { return "length"; }
  RewardScores score_batch(const std::vector<RewardInput>& batch) const override;

 private:
  config::LengthParams p_;
  std::unique_ptr<RewardFunction> correctness_;
};

}  // namespace grpo::reward
