#pragma once
// grpo: the algorithm. Names and meanings follow TRL's GRPOConfig.
#include <optional>

#include "grpo/config/reflect.h"

namespace grpo::config {

enum class LossType { GRPO, BNPO, DAPO, DR_GRPO };
template <> struct EnumNames<LossType> {
  static constexpr std::pair<LossType, std::string_view> items[] = {
      {LossType::GRPO, "grpo"}, {LossType::BNPO, "bnpo"}, {LossType::DAPO, "dapo"}, {LossType::DR_GRPO, "dr_grpo"}};
};
enum class ScaleRewards { GROUP, BATCH, NONE };
template <> struct EnumNames<ScaleRewards> {
  static constexpr std::pair<ScaleRewards, std::string_view> items[] = {
      {ScaleRewards::GROUP, "group"}, {ScaleRewards::BATCH, "batch"}, {ScaleRewards::NONE, "none"}};
};
enum class ImportanceSamplingLevel { TOKEN, SEQUENCE };
template <> struct EnumNames<ImportanceSamplingLevel> {
  static constexpr std::pair<ImportanceSamplingLevel, std::string_view> items[] = {
      {ImportanceSamplingLevel::TOKEN, "token"}, {ImportanceSamplingLevel::SEQUENCE, "sequence"}};
};

// Off-policy correction between the behaviour policy (the weights that sampled a completion) and
// the old policy (the weights the update starts from): TRL's vllm_importance_sampling_* as
// none | tis (*_truncate) | mis (*_mask); docs/training.md compares them with verl's rollout_corr.
enum class RolloutCorrection { NONE, TIS, MIS };
template <> struct EnumNames<RolloutCorrection> {
  static constexpr std::pair<RolloutCorrection, std::string_view> items[] = {
      {RolloutCorrection::NONE, "none"}, {RolloutCorrection::TIS, "tis"}, {RolloutCorrection::MIS, "mis"}};
};

// Rollout of the next step overlapped with the update of this one (train/async_rollout.h).
enum class AsyncRolloutMode { OFF, ON };
template <> struct EnumNames<AsyncRolloutMode> {
  static constexpr std::pair<AsyncRolloutMode, std::string_view> items[] = {{AsyncRolloutMode::OFF, "off"},
                                                                             {AsyncRolloutMode::ON, "on"}};
};

struct GrpoConfig {
  int num_generations = 8;                 // G
  double beta = 0.0;                       // KL coefficient; 0 loads no reference model
  bool log_kl = false;                     // beta = 0: still load the reference and log KL to it
  double epsilon = 0.2;                    // lower clip
  std::optional<double> epsilon_high;      // upper clip (DAPO clip-higher); null = epsilon
  LossType loss_type = LossType::DAPO;
  ScaleRewards scale_rewards = ScaleRewards::GROUP;
  ImportanceSamplingLevel importance_sampling_level = ImportanceSamplingLevel::TOKEN;
  int num_iterations = 1;                  // mu in DeepSeekMath
  bool mask_truncated_completions = false;
  double entropy_coef = 0.0;
  double advantage_eps = 1e-4;             // TRL's std epsilon
  int ref_model_sync_steps = 0;            // 0 = never re-sync the reference
  bool dynamic_sampling = false;           // DAPO: drop zero-variance groups and draw more
  int max_resample_rounds = 3;
  RolloutCorrection rollout_correction = RolloutCorrection::MIS;  // TRL's default mode: sequence_mask
  ImportanceSamplingLevel rollout_correction_level = ImportanceSamplingLevel::SEQUENCE;
  double rollout_correction_clip_max = 3.0;                // TRL's vllm_importance_sampling_clip_max
  std::optional<double> rollout_correction_clip_min;       // TRL's vllm_importance_sampling_clip_min
  AsyncRolloutMode async_rollout = AsyncRolloutMode::OFF;  // on: a rollout thread samples ahead on weight snapshots
  int max_staleness = 1;                                   // async: most optimizer steps a sampling policy may lag

  template <class V> void visit(V& v) {
    v("num_generations", num_generations, "Completions sampled per prompt (G). A group needs at least 2 to have a baseline.", at_least(2));
    v("beta", beta, "Coefficient of the k3 KL penalty to the reference model; 0 loads no reference model.", at_least(0));
    v("log_kl", log_kl, "With beta = 0, still load the reference model and log the KL to it (monitoring only: the loss and the trajectory are unchanged; one more forward per micro-batch).");
    v("epsilon", epsilon, "Lower clip of the ratio: clip(rho, 1 - epsilon, 1 + epsilon_high).", greater_than(0));
    v("epsilon_high", epsilon_high, "Upper clip (DAPO clip-higher); null uses epsilon.", greater_than(0));
    v("loss_type", loss_type, "Loss normalisation: grpo (per-sequence token mean), bnpo, dapo (global token mean), dr_grpo (sum / (sequences * max_completion_length)).");
    v("scale_rewards", scale_rewards, "Divide advantages by the std of the group, of the batch, or not at all (Dr. GRPO).");
    v("importance_sampling_level", importance_sampling_level, "token (GRPO) or sequence (GSPO) importance ratios.");
    v("num_iterations", num_iterations, "Optimisation passes over each generation batch (mu).", at_least(1));
    v("mask_truncated_completions", mask_truncated_completions, "Exclude completions that hit max_completion_length from the loss.");
    v("entropy_coef", entropy_coef, "Weight of an entropy bonus; 0 = off.", at_least(0));
    v("advantage_eps", advantage_eps, "Added to the std when scaling advantages.", greater_than(0));
    v("ref_model_sync_steps", ref_model_sync_steps, "Copy the policy into the reference model every N steps; 0 = never.", at_least(0));
    v("dynamic_sampling", dynamic_sampling, "DAPO dynamic sampling: drop groups whose rewards are all equal and draw more prompts.");
    v("max_resample_rounds", max_resample_rounds, "Cap on extra draws per step with dynamic_sampling.", at_least(0));
    v("rollout_correction", rollout_correction, "Off-policy correction of completions sampled by an older policy version than the one the update starts from (async rollout, rollout ranks): the policy loss of each token is multiplied by w = pi_old / pi_behaviour, tis truncated to [clip_min, clip_max], mis set to 0 outside it (TRL's vllm_importance_sampling_mode *_truncate / *_mask). Completions of the current version get w = 1 exactly. none = off.");
    v("rollout_correction_level", rollout_correction_level, "token: one ratio per token; sequence: the product over the completion's tokens, one per completion (TRL's token_* / sequence_* modes).");
    v("rollout_correction_clip_max", rollout_correction_clip_max, "Upper bound of the correction ratio (TRL's vllm_importance_sampling_clip_max).", greater_than(0));
    v("async_rollout", async_rollout, "on: the rollout (and scoring) of the next steps runs in a second thread on a snapshot of the weights, overlapped with the update of this step (docs/training.md, Asynchronous rollout). One process, num_iterations 1.");
    v("max_staleness", max_staleness, "async_rollout: the most optimizer steps between the weights that sampled a generation and the weights that train on it (1 = one-step-off). Checkpoint steps drain the pipeline (staleness 0) so that resume is exact.", at_least(1));
    v("rollout_correction_clip_min", rollout_correction_clip_min, "Lower bound of the correction ratio; null = none (TRL's vllm_importance_sampling_clip_min).", at_least(0));
  }
};

}  // namespace grpo::config
