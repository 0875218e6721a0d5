#pragma once
// The reward of a run: several reward functions, each reported on its own, and their weighted sum
// (reward.functions in the config; TRL's reward_funcs with reward_weights).
#include <memory>
#include <map>
#include <string>
#include <vector>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// One reported problem: which row, which function, what.
struct RowProblem {
  size_t row = 0;
  std::string function;
  std::string message;
};

/// Scores of a batch under a RewardSet.
struct RewardSetResult {
  std::vector<std::string> names;               // [functions], unique (repeated kinds get "_2", "_3")
  std::vector<double> weights;                  // [functions]
  std::vector<std::vector<float>> per_function; // [functions][batch], float32, unweighted
  std::vector<float> total;                     // [batch], sum_f weight_f * value_f, float32
  std::vector<uint8_t> masked;                  // [batch], 1 when any function masked the row
  std::vector<RowProblem> problems;             // every reported problem, by row then function
  std::map<std::string, double> counters;       // "<function name>/<counter>" from RewardScores::counters
};

/// Weighted sum of reward functions built from config::RewardConfig.
class RewardSet {
 public:
  /// Builds every function of cfg.functions through the registry. Throws grpo::InputError when
  /// the list is empty, a kind has no factory (e.g. `code` before the sandbox is plugged in) or a
  /// function's parameters are invalid.
  static RewardSet from_config(const config::RewardConfig& cfg);

  /// Adds a function (for tests and programmatic use).
  void add(std::unique_ptr<RewardFunction> fn, double weight);

  /// Scores the batch with every function. A function that throws fails the call (functions are
  /// expected to report bad rows instead); a non-finite value is replaced by 0 and reported.
  RewardSetResult score(const std::vector<RewardInput>& batch) const;

  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return functions_.size(); }

 private:
  std::vector<std::unique_ptr<RewardFunction>> functions_;
  std::vector<double> weights_;
  std::vector<std::string> names_;
};

}  // namespace grpo::reward
