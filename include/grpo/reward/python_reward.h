#pragma once
// `python`: a reward function written in Python with TRL's contract, run unchanged in the sandbox.
//
//   reward: {functions: [{name: python, file: rewards/my_rewards.py, function: my_reward}]}
//
// The function is called as TRL's GRPOTrainer calls its reward_funcs:
//   my_reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., **columns)
// with, per row, the prompt and completion as strings (standard format) or as message lists
// (conversational format: the row's prompt is a list of {role, content} messages, and each
// completion is then [{"role": "assistant", "content": text}]), the completion's token ids (null
// when the caller has none) and every other dataset column as a keyword argument holding one value
// per row. It returns one float per completion, or None to mask a row.
//
// It runs in a persistent worker inside the sandbox (sandbox_session.h), one per configured
// function, one round trip per batch. A batch whose call fails (the function raised, returned the
// wrong count or a non-number, the worker died, hung past timeout_s or flooded its output) gets one
// error naming the file, the function and what went wrong, every row masked, and the worker is
// restarted for the next batch. A None, NaN or infinite value masks its row only.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"
#include "grpo/reward/sandbox.h"

namespace grpo::reward {

class SandboxSession;

/// The request one batch becomes (the worker's protocol, src/reward/python_reward_worker.py):
/// {prompts, completions, completion_ids, columns: {name: [per row]}, trainer_state}. completion_ids
/// come from each row's reference `completion_ids` (the trainer sets it to the completion's token
/// ids; null unless every row has them). trainer_state is the first row's reference
/// `trainer_state` (the trainer sets {global_step, max_steps, epoch} on every row), else null.
/// Columns are every key of the rows' reference objects except prompt, completion, completion_ids,
/// completion_tokens and trainer_state (a row without a key gets null there).
nlohmann::json python_reward_request(const std::vector<RewardInput>& batch);

/// The worker's source (main.py), compiled in from src/reward/python_reward_worker.py.
const std::string& python_reward_worker_source();

class PythonReward : public RewardFunction {
 public:
  /// Reads `params.file` (InputError when unreadable, or when file or function is empty) and checks
  /// that the interpreter is visible in the sandbox. The worker starts on the first batch.
  PythonReward(config::PythonParams params, const config::SandboxConfig& sandbox);
  ~PythonReward() override;
  /// The function's name: its reward is logged under it.
  std::string name() const override { return p_.function; }
  RewardScores score_batch(const std::vector<RewardInput>& batch) const override;
  /// Workers started so far (1 after the first batch; +1 per restart), for tests and logs.
  int workers_started() const;
  /// The running worker's init pid, -1 when none (tests check that nothing outlives it).
  int worker_pid() const;

 private:
  // Masks every row of `out` with one error (logged once, with the end of the worker's `output`)
  // and drops the worker so that the next batch starts a fresh one. Returns the logged message.
  std::string fail_batch(const std::string& what, RewardScores& out, const std::string& output = "") const;

  config::PythonParams p_;
  std::string source_;  // the user's file
  std::unique_ptr<Sandbox> sandbox_;
  mutable std::mutex mu_;  // one batch at a time per worker
  mutable std::unique_ptr<SandboxSession> worker_;
  mutable int started_ = 0;
};

}  // namespace grpo::reward
