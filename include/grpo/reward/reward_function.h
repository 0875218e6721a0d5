#pragma once
// The reward-function interface. A reward function is a named component with its own parameters
// that scores a batch of completions; each row's score is a float, and rows whose score could not
// be computed properly are reported (problem text) or masked (the score means nothing: e.g. the
// code sandbox itself failed), so the trainer can count them instead of learning from noise.
//
// This layer does not use LibTorch; values are plain std::vector<float>, one per row.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo/config/rollout_config.h"

namespace grpo::reward {

/// One row to score.
struct RewardInput {
  std::string prompt;      // the prompt as rendered text ("" when unknown)
  std::string completion;  // the model's completion, UTF-8 (invalid UTF-8 is tolerated)
  /// The dataset row the prompt came from; reward functions read their reference fields from it
  /// (`answer`, `nums`, `target`, `tests`, ... as named in their parameters).
  nlohmann::json reference = nlohmann::json::object();
  /// Length of the completion in tokens; 0 means unknown (the length reward then estimates
  /// bytes/4, rounded up).
  int64_t completion_tokens = 0;
  /// Rollouts with tools (rollout.tools): the strings that open and close a tool's output in the
  /// completion ("<output>", "</output>"); both empty when no tool was on. `completion` is the
  /// whole transcript (what python/http rewards see); the answer-reading functions (math_answer,
  /// countdown, format) read it with those spans removed (policy_text()), so an answer the
  /// interpreter printed counts only when the model restates it in its own text.
  std::string tool_output_open = {}, tool_output_close = {};
};

/// Sets row.tool_output_open / close from rollout.tools: output_prefix and output_suffix without
/// their surrounding whitespace ("\n<output>\n" -> "<output>"), since the decoded transcript may
/// space a token boundary differently; both left empty when no tool is on.
void set_tool_output_markers(RewardInput& row, const config::ToolsConfig& tools);

/// The scores of one reward function over a batch. All vectors have the batch's size.
struct RewardScores {
  std::vector<float> values;          // [batch], the reward of each row (finite; 0 when problem)
  std::vector<std::string> problems;  // [batch], "" when the row was scored normally
  /// [batch], 1 when the value is meaningless (e.g. the sandbox could not run the program) and the
  /// row should be left out of training rather than rewarded 0. Masked rows also carry a problem.
  std::vector<uint8_t> masked;
  /// Batch-level counts worth logging beside the values, e.g. the code reward's programs run and
  /// their sandbox statuses ("programs_run", "status/timeout", "sandbox_errors").
  std::map<std::string, double> counters;

  explicit RewardScores(size_t n = 0) : values(n, 0.0f), problems(n), masked(n, 0) {}
  size_t size() const { return values.size(); }
};

/// A reward function. Implementations must be safe to call from one thread at a time at least,
/// must never throw for a bad completion (that is a low reward, not an error) and report bad
/// reference data per row in RewardScores::problems.
class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  /// The kind's name as written in the config ("format", "math_answer", ...).
  virtual std::string name() const = 0;
  /// Scores every row of the batch. Returns RewardScores of batch.size().
  virtual RewardScores score_batch(const std::vector<RewardInput>& batch) const = 0;
  /// Only the values of score_batch(): [batch], float32.
  std::vector<float> score(const std::vector<RewardInput>& batch) const { return score_batch(batch).values; }
};

/// Base for functions that score each row on its own. score_row() returns the reward and may set
/// `problem`; an exception it throws becomes a problem of that row with reward 0 (so one odd row
/// never kills a training step).
class RowRewardFunction : public RewardFunction {
 public:
  RewardScores score_batch(const std::vector<RewardInput>& batch) const override;

 protected:
  virtual float score_row(const RewardInput& row, std::string& problem) const = 0;
};

}  // namespace grpo::reward
