#pragma once
// The warning for steps whose completions ALL hit rollout.max_completion_length: no completion
// ended, so a reward that needs a finished answer scores nothing and the group has nothing to
// compare. Said once when it starts, then every `every` steps while it lasts (not every step: a
// short limit chosen on purpose would flood the log).
#include <cstdint>
#include <string>

namespace grpo::train {

class TruncationWarning {
 public:
  /// every >= 1: while every step stays all-truncated, repeat the warning every `every` steps.
  explicit TruncationWarning(int64_t max_completion_length, int64_t every = 10);

  /// Call once per step (1-based `step`) with the step's completions/truncated_ratio, reduced over
  /// ranks. Returns the warning to log, or "" (some completion ended, or a repeat not yet due).
  std::string observe(int64_t step, double truncated_ratio);

 private:
  int64_t max_len_;
  int64_t every_;
  int64_t in_a_row_ = 0;  // consecutive all-truncated steps up to the last observed one
};

}  // namespace grpo::train
