#pragma once
// `language_consistency` (DeepSeek-R1 paper, sec. 2.3.2): the proportion of the chain of thought
// written in the target language, to discourage language mixing.
#include <string_view>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"
#include "grpo/reward/unicode_script.h"

namespace grpo::reward {

/// Fraction in [0, 1] of the words of `text` that are in `target`. A word is a maximal run of
/// letters of one alphabetic script (Latin, Cyrillic, Arabic, Devanagari, other), or one CJK
/// character (CJK writes no spaces). With `count_letters`, letters are counted instead of words.
/// Text without letters scores 0 (an empty chain of thought earns nothing).
float script_fraction(std::string_view text, Script target, bool count_letters = false);

/// The `language_consistency` reward: script_fraction() of chain_of_thought(completion).
/// Throws grpo::InputError at construction for an unknown script or unit name.
class LanguageConsistencyReward : public RowRewardFunction {
 public:
  explicit LanguageConsistencyReward(config::LanguageConsistencyParams p);
  std::string name() const override { return "language_consistency"; }

 protected:
  float score_row(const RewardInput& row, std::string& problem) const override;

 private:
  config::LanguageConsistencyParams p_;
  Script target_;
};

}  // namespace grpo::reward
