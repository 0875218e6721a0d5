#pragma once
// Off-policy correction for completions sampled by an older policy than the one the update starts
// from (async rollout, rollout ranks), and the metrics of the behaviour-vs-old gap.
//
// Three policies (verl's "decoupled" mode): pi_behaviour sampled the completion (its log-probs are
// rollout::Completion::logprobs), pi_old is the policy at the start of the update (the PPO ratio's
// denominator), pi_theta is trained. The PPO ratio corrects pi_old -> pi_theta; this corrects
// pi_behaviour -> pi_old, as TRL 1.16's GRPOTrainer does for vLLM
// (trl/trainer/grpo_trainer.py, _generate_and_score_completions, "vllm_importance_sampling_mode"):
//   d      = (logp_old - logp_behaviour) * mask              [B, T]  (non-finite -> 0)
//   token:    r = exp(d)                                     [B, T]
//   sequence: r = exp(sum_t d)                               [B, 1]  (the product of the token ratios)
//   tis (token_truncate / sequence_truncate): w = clamp(r, clip_min, clip_max)
//   mis (token_mask / sequence_mask):         w = r where clip_min <= r <= clip_max, else 0
// and the loss multiplies each token's policy term by w (TRL: per_token_loss *= importance_sampling_ratio,
// before the KL term is added). A masked token or sequence (w = 0) contributes nothing, and still
// counts in the loss's normaliser, as in TRL.
//
// One difference from TRL, on purpose: rows sampled by the very weights the update starts from
// (not stale) get w = 1 exactly. Their behaviour and old policies are the same parameters; the
// only gap is kernel rounding (KV-cache decode vs full forward), which logprob_mismatch/* reports
// (below 1e-5 in float32 on the CPU). TRL corrects that gap too because vLLM's numerics differ from
// the trainer's by far more.
#include <torch/torch.h>

#include <optional>

#include "grpo/config/grpo_config.h"
#include "grpo/train/step_metrics.h"

namespace grpo::train {

/// grpo.rollout_correction*.
struct RolloutCorrectionOptions {
  config::RolloutCorrection mode = config::RolloutCorrection::MIS;
  config::ImportanceSamplingLevel level = config::ImportanceSamplingLevel::SEQUENCE;
  double clip_max = 3.0;
  std::optional<double> clip_min;
  static RolloutCorrectionOptions from_config(const config::GrpoConfig& g);
};

/// The correction of one micro-batch. Metric sums range over the stale rows only (tokens of them at
/// token level, sequences with at least one token at sequence level); no graph.
struct RolloutCorrectionResult {
  torch::Tensor weights;       // [B, T] (token) or [B, 1] (sequence), old's dtype; 1 for rows not stale
  torch::Tensor weight_sum;    // [] sum of w over the counted entries
  torch::Tensor weight_max;    // [] max of w (0 when none counted)
  torch::Tensor ratio_max;     // [] max of r before truncation/masking, log ratio bounded to 20 (verl's safety bound)
  torch::Tensor clipped_sum;   // [] entries outside [clip_min, clip_max]: truncated (tis) or masked (mis)
  torch::Tensor count;         // [] entries counted
};

/// w for old_logprobs, behaviour_logprobs and mask [B, T] (mask: 1 for completion tokens in the
/// loss) and stale [B] bool (undefined: every row is stale). Mode none: weights undefined (and the
/// sums 0). Throws grpo::InputError on mismatched shapes.
RolloutCorrectionResult rollout_correction(const torch::Tensor& old_logprobs, const torch::Tensor& behaviour_logprobs,
                                           const torch::Tensor& mask, const torch::Tensor& stale,
                                           const RolloutCorrectionOptions& opt);

/// The behaviour-vs-old metrics of a step, accumulated over its micro-batches on the device and
/// written once (put): the maxima cost one device-to-host copy per step.
///   logprob_mismatch/mean_abs, /k3_kl   mean |d| and mean k3 = e^d - d - 1 over tokens (logprob_mismatch())
///   logprob_mismatch/max_abs            max |d| (TRL's sampling/sampling_logp_difference/max)
///   logprob_mismatch/probs_diff_mean, /probs_diff_max
///                                       |e^old - e^behaviour| (verl's training/rollout_probs_diff_*)
///   rollout_correction/weight_mean, /weight_max, /ratio_max, /clipped_frac, /rows
///                                       (only in steps with stale rows and a correction on)
class OffPolicyMetrics {
 public:
  /// d = old - behaviour over mask [B, T].
  void add_mismatch(const torch::Tensor& old_logprobs, const torch::Tensor& behaviour_logprobs,
                    const torch::Tensor& mask);
  /// One micro-batch's correction; stale_rows = rows it corrected (host count).
  void add_correction(const RolloutCorrectionResult& r, int64_t stale_rows);
  void put(StepMetrics& m) const;

 private:
  torch::Tensor abs_sum_, k3_sum_, count_, max_abs_, prob_sum_, prob_max_;     // [] float64
  torch::Tensor w_sum_, w_max_, r_max_, clipped_sum_, w_count_;                // [] float64
  int64_t stale_rows_ = 0;
};

}  // namespace grpo::train
