#include "grpo/reward/length_reward.h"

#include <cmath>
#include <numbers>

#include "grpo/util/error.h"

namespace grpo::reward {

float overlong_penalty(int64_t length, int64_t max_length, int64_t buffer_length) {
  const int64_t expected = max_length - buffer_length;  // L_max - L_cache
  if (length <= expected) return 0.0f;
  if (length <= max_length)
    return static_cast<float>(static_cast<double>(expected - length) / static_cast<double>(buffer_length));
  return -1.0f;
}

float cosine_length_reward(int64_t length, int64_t max_length, bool correct, const config::LengthParams& p) {
  if (length >= max_length) return static_cast<float>(p.exceed);
  const double r0 = correct ? p.correct_short : p.wrong_short;
  const double rl = correct ? p.correct_long : p.wrong_long;
  const double t = static_cast<double>(std::max<int64_t>(length, 0)) / static_cast<double>(max_length);
  return static_cast<float>(rl + 0.5 * (r0 - rl) * (1.0 + std::cos(std::numbers::pi * t)));
}

int64_t completion_length(const RewardInput& row) {
  if (row.completion_tokens > 0) return row.completion_tokens;
  return static_cast<int64_t>((row.completion.size() + 3) / 4);
}

LengthReward::LengthReward(config::LengthParams p, std::unique_ptr<RewardFunction> correctness)
    : p_(std::move(p)), correctness_(std::move(correctness)) {
  GRPO_REQUIRE(p_.max_length >= 1, "reward length: max_length must be >= 1, got ", p_.max_length);
  GRPO_REQUIRE(p_.buffer_length >= 0 && p_.buffer_length <= p_.max_length, "reward length: buffer_length (",
               p_.buffer_length, ") must be between 0 and max_length (", p_.max_length, ")");
  GRPO_REQUIRE(p_.mode != config::LengthMode::COSINE || correctness_ != nullptr,
               "reward length: cosine mode needs a correctness function (math_answer or countdown)");
}

RewardScores LengthReward::score_batch(const std::vector<RewardInput>& batch) const {
  RewardScores out(batch.size());
  if (p_.mode == config::LengthMode::OVERLONG) {
    for (size_t i = 0; i < batch.size(); ++i)
      out.values[i] = overlong_penalty(completion_length(batch[i]), p_.max_length, p_.buffer_length);
    return out;
  }
  RewardScores c = correctness_->score_batch(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    out.values[i] = cosine_length_reward(completion_length(batch[i]), p_.max_length, c.values[i] >= 1.0f - 1e-6f, p_);
    out.problems[i] = c.problems[i];
    out.masked[i] = c.masked[i];
  }
  return out;
}

}  // namespace grpo::reward
