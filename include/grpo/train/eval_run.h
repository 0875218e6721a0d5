#pragma once
// `grpo eval`'s loop: evaluates a split problem by problem into a JSONL file (one line per
// problem, appended and flushed as each chunk of problems finishes) and resumes a killed run from
// that file. Problems are evaluated in chunks aligned to multiples of the chunk size; a chunk with
// any problem missing is evaluated whole again (the same batch as the uninterrupted run, so the
// same floats) and only its missing lines are written. Each problem samples from its own seed
// (evaluate.h EvalSampling), so the totals equal the uninterrupted run's.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/data/dataset.h"
#include "grpo/reward/reward_set.h"
#include "grpo/train/evaluate.h"
#include "grpo/train/policy.h"

namespace grpo::train {

struct EvalRunOptions {
  std::string out;               // the per-problem JSONL (created, or resumed when it exists)
  EvalSampling sampling;         // n, temperature, seed
  std::vector<int> ks = {1};     // pass@k / maj@k reported (each <= n when n > 1)
  int64_t limit = 0;             // the first `limit` problems of the split; 0 = all
  int64_t chunk = 0;             // problems per rollout call; 0 = rollout.max_batch_size
  std::string settings;          // what produced the lines (model, data, config, n, seed, T): a line
                                 // written under other settings is refused instead of resumed
  bool progress = true;          // a progress line on stderr (util::StepProgress)
};

struct EvalRunResult {
  EvalResult summary;
  int64_t resumed = 0;    // problems read back from an existing file
  int64_t evaluated = 0;  // problems evaluated by this call
};

/// Evaluates data[0, limit) into opts.out, skipping the problems already there. A torn last
/// line (a kill in the middle of a write) is cut off first. Throws grpo::InputError when a line
/// is malformed, was written under other settings, or names a problem outside the split.
EvalRunResult run_eval(Policy& policy, const data::Dataset& data, const config::Config& cfg,
                       const reward::RewardSet& rewards, const EvalRunOptions& opts);

/// The settings key of a run: a 64-bit FNV-1a hash (hex) of the text given (the resolved config,
/// the data file's bytes, n, seed, temperature). Equal text, equal key, on every platform.
std::string eval_settings_key(const std::string& text);

/// Test hook: called with the number of problems written so far after each line is flushed (the
/// SIGKILL-and-resume test kills the process from it). nullptr to clear.
void set_eval_write_hook_for_testing(std::function<void(int64_t)> hook);

}  // namespace grpo::train
