#include "grpo/reward/math_answer_reward.h"

#include "completion_parts.h"
#include "grpo/reward/math_equivalence.h"
#include "grpo/util/error.h"

namespace grpo::reward {

MathAnswerReward::MathAnswerReward(config::MathAnswerParams p)
    : p_(std::move(p)),
      extractor_(p_.answer_regex, p_.think_tag, p_.answer_tag, static_cast<size_t>(p_.max_completion_bytes)) {
  GRPO_REQUIRE(!p_.reference_field.empty(), "reward math_answer: reference_field must not be empty");
}

float MathAnswerReward::score_row(const RewardInput& row, std::string& problem) const {
  const auto& ref = row.reference;
  if (!ref.is_object() || !ref.contains(p_.reference_field)) {
    problem = "reference field '" + p_.reference_field + "' is missing";
    return 0.0f;
  }
  const auto& field = ref.at(p_.reference_field);
  std::string ref_text;
  if (field.is_string()) ref_text = reference_answer_text(field.get<std::string>());
  else if (field.is_number_integer() || field.is_number_unsigned() || field.is_number_float()) ref_text = field.dump();
  else {
    problem = "reference field '" + p_.reference_field + "' must be a string or a number, got " + field.type_name();
    return 0.0f;
  }
  std::string own;  // the completion without tool outputs: a printed answer must be restated
  auto answer = extractor_.extract(policy_text(row, own));
  std::string detail;
  // The reference is checked even when the completion has no answer, so bad data is always seen.
  MathMatch m = compare_math_answers(answer ? *answer : std::string_view("\\relax"), ref_text, p_.tolerance, &detail);
  if (m == MathMatch::UNPARSEABLE_REFERENCE) {
    problem = "reference '" + ref_text.substr(0, 200) + "' cannot be parsed: " + detail;
    return 0.0f;
  }
  return answer && m == MathMatch::EQUAL ? 1.0f : 0.0f;
}

}  // namespace grpo::reward
