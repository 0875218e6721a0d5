#pragma once
// `math_answer`: 1 when the completion's final answer equals the dataset's reference answer, else 0
// (the verifiable reward of DeepSeekMath / R1-Zero).
#include "grpo/config/reward_config.h"
#include "grpo/reward/answer_extraction.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// Reads the reference from row.reference[p.reference_field] (string or number; see
/// reference_answer_text() for MATH / GSM8K style fields), extracts the completion's final answer
/// with AnswerExtractor and compares them with compare_math_answers(p.tolerance).
/// Reward 1 or 0. A missing, non-text or unparseable reference scores 0 and is reported as a
/// problem of the row. Throws grpo::InputError at construction for a bad answer_regex.
class MathAnswerReward : public RowRewardFunction {
 public:
  explicit MathAnswerReward(config::MathAnswerParams p);
  std::string name() const override { return "math_answer"; }

 protected:
  float score_row(const RewardInput& row, std::string& problem) const override;

 private:
  config::MathAnswerParams p_;
  AnswerExtractor extractor_;
};

}  // namespace grpo::reward
