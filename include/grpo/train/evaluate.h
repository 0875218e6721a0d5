#pragma once
// Evaluation on a held-out split: greedy accuracy (pass@1) and, with k samples per prompt,
// pass@k, plus every reward function's mean.
#include <map>
#include <string>

#include "grpo/config/config.h"
#include "grpo/data/dataset.h"
#include "grpo/reward/reward_set.h"
#include "grpo/train/policy.h"

namespace grpo::train {

struct EvalResult {
  int64_t num_prompts = 0;
  double accuracy = 0;   // greedy pass@1: fraction of prompts whose completion is correct
  double pass_at_k = 0;  // fraction of prompts with at least one correct of k samples (k > 1)
  int k = 1;
  std::map<std::string, double> reward_means;  // greedy completions, per function and "total"
  double mean_completion_length = 0;           // tokens, greedy
  bool has_accuracy = false;                   // false when no correctness reward is configured
};

/// Which reward functions decide correctness: math_answer, countdown and code (a row is correct
/// when every one of them gives its full score, 1). Returns their indices in cfg.reward.functions.
std::vector<size_t> correctness_functions(const config::RewardConfig& cfg);

/// Row i is correct when every correctness function's value is >= 1 - 1e-6.
std::vector<uint8_t> correct_rows(const reward::RewardSetResult& r, const std::vector<size_t>& correctness);

/// Evaluates `policy` on `data` (at most max_prompts prompts; 0 = all): greedy decoding for
/// accuracy, then k = trainer.eval_num_samples samples at the rollout temperature for pass@k.
/// Reproducible for a given seed. Throws as the rollout engine and reward functions do.
EvalResult evaluate(Policy& policy, const data::Dataset& data, const config::Config& cfg,
                    const reward::RewardSet& rewards, uint64_t seed, int64_t max_prompts = 0);

/// The result as flat metrics ("eval/accuracy", "eval/pass@4", "eval/rewards/format", ...).
std::map<std::string, double> eval_metrics(const EvalResult& r);

}  // namespace grpo::train
