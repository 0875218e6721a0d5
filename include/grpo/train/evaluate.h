#pragma once
// Evaluation on a held-out split, problem by problem: one greedy completion (accuracy, format rate,
// truncation rate, length, every reward function's mean) and, with n > 1 samples per problem at a
// temperature, pass@k (Chen et al. 2021's unbiased estimator) and maj@k (eval_metrics.h). The
// training stages' periodic evaluation and `grpo eval` (eval_run.h) both go through
// evaluate_problems() and summarize_eval(): same prompts, template, rewards and seeds.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/data/dataset.h"
#include "grpo/reward/reward_set.h"
#include "grpo/train/policy.h"

namespace grpo::train {

struct EvalResult {
  int64_t num_prompts = 0;
  double accuracy = 0;   // greedy pass@1: fraction of prompts whose completion is correct
  double pass_at_k = 0;  // pass@k for k = num_samples (n > 1), else the greedy accuracy
  int k = 1;
  std::map<std::string, double> reward_means;  // greedy completions, per function and "total"
  double mean_completion_length = 0;           // tokens, greedy
  bool has_accuracy = false;                   // false when no correctness reward is configured
  int num_samples = 1;                         // n: sampled completions per problem (1 = greedy only)
  std::map<int, double> pass_at;               // k -> pass@k over the n samples; n == 1: {1: accuracy}
  std::map<int, double> maj_at;                // k -> maj@k (n > 1 and a math_answer reward)
  bool has_format = false;                     // a format reward is configured
  double format_rate = 0;                      // greedy completions given the format reward's full score
  double truncation_rate = 0;                  // greedy completions that hit the length limit
  double sample_mean_completion_length = 0;    // tokens, sampled completions (n > 1)
};

/// One problem's evaluation; `grpo eval` writes one as a JSONL line (problem_to_json).
struct ProblemResult {
  int64_t index = 0;   // position in the evaluated split (after over-long prompts are dropped)
  std::string prompt;  // as rendered with the chat template
  // The greedy completion.
  std::string completion;
  std::optional<std::string> answer;  // extracted as the math_answer reward does (nullopt: none)
  bool correct = false;               // every correctness reward at its full score
  bool formatted = false;             // the (first) format reward at its full score
  bool truncated = false;             // finish reason "length"
  int64_t length = 0;                 // tokens
  std::map<std::string, double> rewards;  // per reward function, and "total"
  // The n sampled completions (empty when n == 1), sample j from the stream substream_seed(seed + 1, index).
  std::vector<std::string> samples;
  std::vector<std::optional<std::string>> sample_answers;  // voting answers (eval_metrics.h voting_answer)
  std::vector<uint8_t> sample_correct;
  std::vector<int64_t> sample_lengths;
  std::vector<uint8_t> sample_truncated;
};

/// How to sample: n completions per problem at `temperature` (the rest of rollout: as configured),
/// problem i's from the seed substream_seed(seed + 1, i) (so a problem's samples do not depend on
/// which other problems are evaluated with it).
struct EvalSampling {
  int num_samples = 1;
  double temperature = 1.0;
  uint64_t seed = 0;
};

/// Which reward functions decide correctness: math_answer, countdown and code (a row is correct
/// when every one of them gives its full score, 1). Returns their indices in cfg.reward.functions.
std::vector<size_t> correctness_functions(const config::RewardConfig& cfg);

/// Row i is correct when every correctness function's value is >= 1 - 1e-6.
std::vector<uint8_t> correct_rows(const reward::RewardSetResult& r, const std::vector<size_t>& correctness);

/// Evaluates the problems `indices` of `data` (greedy, then n samples when n > 1) in one rollout
/// call each. Results in the order of `indices`. Throws as the rollout engine and rewards do.
std::vector<ProblemResult> evaluate_problems(Policy& policy, const data::Dataset& data, const std::vector<int64_t>& indices,
                                             const config::Config& cfg, const reward::RewardSet& rewards,
                                             const EvalSampling& sampling);

/// The metrics of `problems` (summed in index order, whatever their order here) for the
/// pass@k / maj@k values of `ks` (each <= n; n = the samples each problem has, or 1).
EvalResult summarize_eval(std::vector<ProblemResult> problems, const config::RewardConfig& reward_cfg,
                          const std::vector<int>& ks);

/// Evaluates `policy` on `data` (at most max_prompts prompts; 0 = all): greedy decoding for
/// accuracy, then n = trainer.eval_num_samples samples at the rollout temperature for pass@n and
/// maj@n. Reproducible for a given seed. Throws as the rollout engine and reward functions do.
EvalResult evaluate(Policy& policy, const data::Dataset& data, const config::Config& cfg,
                    const reward::RewardSet& rewards, uint64_t seed, int64_t max_prompts = 0);

/// The result as flat metrics ("eval/accuracy", "eval/pass@4", "eval/maj@4", "eval/format_rate",
/// "eval/truncation_rate", "eval/rewards/format", ...).
std::map<std::string, double> eval_metrics(const EvalResult& r);

/// A problem as one JSON object (the JSONL line of `grpo eval`) and back; from_json throws
/// grpo::InputError naming the missing or mistyped field.
nlohmann::json problem_to_json(const ProblemResult& p);
ProblemResult problem_from_json(const nlohmann::json& j);

}  // namespace grpo::train
