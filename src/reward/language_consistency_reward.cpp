#include "grpo/reward/language_consistency_reward.h"

#include "completion_parts.h"
#include "grpo/util/error.h"

namespace grpo::reward {

float script_fraction(std::string_view text, Script target, bool count_letters) {
  size_t total = 0, hits = 0;
  Script run = Script::NONE;  // script of the word being read, NONE between words
  for (size_t i = 0; i < text.size();) {
    Script s = script_of(next_code_point(text, i));
    if (s == Script::NONE) {
      run = Script::NONE;
      continue;
    }
    bool counts = count_letters || s == Script::CJK || s != run;  // a new word starts
    run = s;
    if (counts) {
      ++total;
      hits += s == target;
    }
  }
  return total == 0 ? 0.0f : static_cast<float>(static_cast<double>(hits) / static_cast<double>(total));
}

LanguageConsistencyReward::LanguageConsistencyReward(config::LanguageConsistencyParams p) : p_(std::move(p)) {
  auto s = script_from_name(p_.script);
  GRPO_REQUIRE(s.has_value(), "reward language_consistency: script must be one of latin, cjk, cyrillic, arabic, "
                              "devanagari, got \"", p_.script, "\"");
  GRPO_REQUIRE(!p_.think_tag.empty(), "reward language_consistency: think_tag must not be empty");
  target_ = *s;
}

float LanguageConsistencyReward::score_row(const RewardInput& row, std::string&) const {
  return script_fraction(chain_of_thought(row.completion, p_.think_tag), target_,
                         p_.unit == config::ScriptUnit::LETTERS);
}

}  // namespace grpo::reward
