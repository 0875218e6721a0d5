#pragma once
// One GRPO stage (DeepSeekMath sec. 4.1, as TRL's GRPOTrainer runs it). Each generation batch:
//   B prompts (sharded over ranks) -> G completions each (rollout engine) -> rewards (weighted sum)
//   -> group-relative advantages -> old log-probs (num_iterations > 1) and reference log-probs
//   (beta > 0) -> num_iterations optimizer steps, each over gradient_accumulation_steps
//   micro-batches of per_device_train_batch_size completions.
// B = per_device_train_batch_size * gradient_accumulation_steps / num_generations per rank.
// Sampling seeds derive from (trainer.seed, rank, generation index), so a resumed run samples
// exactly what the uninterrupted one did.
#include <memory>
#include <optional>

#include "grpo/data/dataset.h"
#include "grpo/dist/sharded_reference.h"
#include "grpo/reward/reward_set.h"
#include "grpo/rollout/engine.h"
#include "grpo/train/advantages.h"
#include "grpo/train/async_rollout.h"
#include "grpo/train/group_selection.h"
#include "grpo/train/stage_runner.h"
#include "grpo/train/token_batch.h"
#include "grpo/train/truncation_warning.h"

namespace grpo::train {

class GrpoStage : public StageRunner {
 public:
  /// `rewards` and `eval_data` (may be null) must outlive the stage.
  GrpoStage(const config::Config& cfg, StageSettings settings, Policy& policy, std::shared_ptr<dist::Distributed> dist,
            const reward::RewardSet& rewards, const data::Dataset* eval_data);
  ~GrpoStage() override;

  // distributed.rollout_ranks (issue 22, synchronous): the trainer (constructed with dist = null)
  // asks rollout rank `rollout_rank` of `world` for every draw instead of sampling itself; the
  // rollout rank's stage (also dist = null) runs serve_rollouts() until the trainer says stop.
  void set_rollout_rank(std::shared_ptr<dist::Distributed> world, int rollout_rank);
  /// Rollout rank: serves draws until stop; returns whether the trainer was interrupted.
  bool serve_rollouts(std::shared_ptr<dist::Distributed> world, int trainer_rank);
  /// Trainer: tells the rollout rank to stop serving.
  void stop_rollout_rank(bool interrupted);
  int64_t local_rollouts() const { return local_rollouts_; }  // engine_->generate calls on this rank

 protected:
  bool train_step(std::map<std::string, double>& metrics) override;
  nlohmann::json extra_state() const override;
  void restore_extra_state(const nlohmann::json& s) override;
  bool can_checkpoint() const override { return iteration_ == 0; }
  data::LoaderPosition data_position() const override;

 private:
  struct Generation;  // one generation batch (completions, advantages, log-probs)
  struct Draws;       // the draws of one generation batch, with dynamic sampling's counts
  struct Pending;     // async: a generation batch the rollout thread finished, with its metrics
  struct Snapshot;    // async: a frozen copy of the weights and the rollout engine that samples it
  // Who samples a generation batch: the engine, the generation index (sampling seeds) and the step
  // that trains on it (the reward's trainer_state). Sync: engine_, generations_, step_.
  struct RollCtx {
    rollout::RolloutEngine* engine;
    int64_t generation;
    int64_t step;
  };

  // generate() and its steps, in the order they run: select_groups (draw_groups, which repeats
  // draw_prompts, roll_out and score; then groups_to_train), then the rest as listed. That order
  // (of the loader, the seeds and the arithmetic) is what makes runs reproducible.
  void generate(StepMetrics& metrics);
  GroupBatch select_groups(int64_t B, StepMetrics& metrics, const RollCtx& ctx);
  Draws draw_groups(int64_t B, StepMetrics& metrics, const RollCtx& ctx);
  void draw_prompts(Draw& d, int64_t B);
  int64_t roll_out(Draw& d, int round, int64_t B, const RollCtx& ctx);
  void score(Draw& d, const RollCtx& ctx) const;
  // async_rollout: on: the rollout thread's side (prompts to
  // micro-batches, on a snapshot) and the trainer's side (publish, take, wait metrics).
  std::unique_ptr<Pending> produce_generation(int64_t g, Snapshot& snap);
  void take_generation(StepMetrics& metrics);
  void start_async();
  int64_t groups_to_train(Draws& draws, int64_t B) const;
  AdvantageResult group_advantages(Generation& gen, const reward::RewardSetResult& scored) const;
  void put_reward_metrics(StepMetrics& metrics, const reward::RewardSetResult& scored,
                          const AdvantageResult& adv);
  void put_completion_metrics(StepMetrics& metrics, const Generation& gen) const;
  void build_micro_batches(Generation& gen) const;
  void old_and_ref_logprobs(Generation& gen, StepMetrics& metrics);
  void log_completion_samples(const Generation& gen, const GroupBatch& batch) const;
  torch::Tensor no_grad_logprobs(model::Transformer& model, const TokenBatch& b);
  torch::Tensor reference_logprobs(const TokenBatch& b);  // ref_, or the LoRA base

  void remote_roll_out(Draw& d, int round, int64_t B, const RollCtx& ctx, const data::LoaderPosition& before);
  std::shared_ptr<dist::Distributed> rollout_world_;  // set on the trainer with rollout ranks
  int rollout_rank_ = -1;
  int64_t local_rollouts_ = 0;

  const reward::RewardSet& rewards_;
  const data::Dataset* eval_data_;
  std::unique_ptr<rollout::RolloutEngine> engine_;
  model::Transformer ref_{nullptr};
  bool ref_is_base_ = false;  // LoRA: the reference is the policy with its adapters off (no ref_ copy)
  // sharding full: ref_ is this object's model, its blocks sharded like the policy's (declared
  // after ref_: destroyed first, while ref_ is no longer used).
  std::unique_ptr<dist::ShardedReference> ref_shards_;
  std::unique_ptr<Generation> gen_;
  int iteration_ = 0;          // update index within the current generation batch
  int64_t generations_ = 0;    // generation batches drawn so far
  TruncationWarning truncation_warning_{cfg_.rollout.max_completion_length};  // all completions cut off
  data::LoaderPosition consumed_;  // async: the loader position after the last generation trained on
  std::unique_ptr<AsyncRollout<Pending, Snapshot>> async_;  // async_rollout: on, from the first step
};

}  // namespace grpo::train
