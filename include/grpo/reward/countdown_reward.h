#pragma once
// `countdown`: TinyZero's Countdown task (Pan et al. 2025, TinyZero; verl/utils/reward_score/
// countdown.py). The completion's equation, inside the last <answer>...</answer>, must use each of
// the row's numbers exactly once with + - * / and parentheses and evaluate to the target.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// An exact rational num/den, den > 0, in lowest terms.
struct Rational {
  int64_t num = 0;
  int64_t den = 1;
  bool operator==(const Rational&) const = default;
};

/// Result of parsing and evaluating a Countdown equation.
struct CountdownEval {
  enum Status { OK, SYNTAX_ERROR, DIVISION_BY_ZERO, OVERFLOW } status = SYNTAX_ERROR;
  Rational value;                // valid when status == OK
  std::vector<int64_t> numbers;  // the literals used, in order of appearance
  std::string error;             // why, when not OK
};

/// Parses `equation` with a recursive-descent parser (never an interpreter): non-negative integer
/// literals, binary + - * /, parentheses, whitespace; an optional "= N" suffix is accepted and
/// returned as a second check in `rhs`. Unary signs, decimals and anything else are syntax errors.
/// Evaluates in exact rational arithmetic (int64 with overflow checks). At most 1000 bytes and 64
/// levels of nesting.
CountdownEval evaluate_countdown(std::string_view equation, std::optional<Rational>* rhs = nullptr);

/// The Countdown reward of one completion: 1 when the equation in the last <answer> block (after
/// </think> when there is one) uses exactly `numbers` (as a multiset) and equals `target` (and the
/// optional "= N" agrees); 0 when there is no answer block, on a syntax error or a division by zero;
/// `format_score` when an equation parses but uses the wrong numbers or misses the target.
float countdown_score(std::string_view completion, const std::vector<int64_t>& numbers, int64_t target,
                      const config::CountdownParams& p);

/// The `countdown` reward function. Reads row.reference[p.numbers_field] (list of integers) and
/// row.reference[p.target_field] (integer, or a string of one); a missing or malformed field scores
/// 0 and is reported.
class CountdownReward : public RowRewardFunction {
 public:
  explicit CountdownReward(config::CountdownParams p) : p_(std::move(p)) {}
  std::string name() const override { return "countdown"; }

 protected:
  float score_row(const RewardInput& row, std::string& problem) const override;

 private:
  config::CountdownParams p_;
};

}  // namespace grpo::reward
