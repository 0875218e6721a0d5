#pragma once
// The GRPO policy loss, term by term as TRL 1.16's GRPOTrainer._compute_loss
// (trl/trainer/grpo_trainer.py, "def _compute_loss"):
//   log_ratio  = logp - logp_old                          (per token, [B, T])
//   token:     w = log_ratio;  sequence (GSPO, arXiv:2507.18071): w = sum_t(log_ratio*m) / max(1, sum_t m), [B, 1]
//   rho        = exp(clamp(w, -20, 20))                   (clamp as torchtitan does, so exp never overflows)
//   L_pg       = -min(rho * A, clip(rho, 1 - epsilon, 1 + epsilon_high) * A)   [* w: rollout_is_weights]
//   L          = L_pg + beta * (exp(ref - logp) - (ref - logp) - 1)   (k3 KL estimator, Schulman 2020)
//   loss       = aggregate(L * m) - entropy_coef * sum(H * m) / num_tokens
// with the aggregation of loss_type:
//   grpo:    sum_i [ sum_t(L*m)_i / max(1, sum_t m_i) ] / num_sequences      (DeepSeekMath eq. 3)
//   bnpo:    sum(L*m) / num_tokens                                            (tokens of the local batch)
//   dapo:    sum(L*m) / num_tokens                                            (tokens of the generation batch, all ranks)
//   dr_grpo: sum(L*m) / (num_sequences * max_completion_length)               (Dr. GRPO, arXiv:2503.20783)
//
// Gradient accumulation. Every aggregation above is a sum over sequences or tokens divided by a
// normaliser, and the normaliser is an ARGUMENT (LossNormaliser), not something computed from the
// micro-batch. The trainer computes it once for the whole optimizer step (or generation batch) and
// passes the same value to every micro-batch, so the micro-batch losses are partial sums of one total:
// sum_k loss(micro_k) == loss(whole batch), and so are their gradients, for any split (exact up to
// float rounding). What to pass:
//   num_sequences: sequences in the optimizer step on this rank (grpo, dr_grpo);
//   num_tokens:    bnpo: sum of completion_mask over the optimizer step on this rank;
//                  dapo: sum of completion_mask over the generation batch of ALL ranks, times
//                        gradient_accumulation_steps / steps_per_generation (TRL's rescale to one
//                        accumulation window), divided by the number of ranks when DDP averages gradients.
// With one rank and one micro-batch this is exactly TRL's loss. (TRL itself divides per-micro-batch
// means by the number of accumulation steps for grpo/bnpo/dr_grpo and its entropy bonus, which only
// equals the unsplit loss when every micro-batch has the same length; passing global counts is exact.)
#include <torch/torch.h>

#include <cstdint>

#include "grpo/config/grpo_config.h"

namespace grpo::train {

/// Hyper-parameters of the loss (grpo.* and rollout.max_completion_length).
struct LossOptions {
  config::LossType loss_type = config::LossType::DAPO;
  config::ImportanceSamplingLevel importance_sampling_level = config::ImportanceSamplingLevel::TOKEN;
  double epsilon_low = 0.2;   // grpo.epsilon
  double epsilon_high = 0.2;  // grpo.epsilon_high, or epsilon when null
  double beta = 0.0;          // KL coefficient; 0 = ref_logprobs not needed
  double entropy_coef = 0.0;  // 0 = no entropy bonus; entropies not needed
  int64_t max_completion_length = 256;  // dr_grpo's constant normaliser
  double log_ratio_clamp = 20.0;        // |log ratio| is clamped to this before exp
  /// The options of a config (epsilon_high defaults to epsilon).
  static LossOptions from_config(const config::GrpoConfig& g, int64_t max_completion_length);
};

/// Global counts the sums are divided by; see the header comment for what to pass per loss_type.
struct LossNormaliser {
  double num_sequences = 0;  // > 0 for grpo and dr_grpo
  double num_tokens = 0;     // bnpo/dapo, and the entropy bonus; clamped to >= 1 like TRL
};

/// Inputs of one micro-batch. B sequences, T completion positions (right-padded).
struct LossInputs {
  torch::Tensor logprobs;        // [B, T] float32, requires grad: log pi_theta(token)
  torch::Tensor old_logprobs;    // [B, T] or undefined (= logprobs.detach(), num_iterations == 1). Non-finite entries are masked out.
  torch::Tensor ref_logprobs;    // [B, T] or undefined; required when beta != 0
  torch::Tensor advantages;      // [B] (or [B, T]) float
  torch::Tensor completion_mask; // [B, T] float or bool: 1 for completion tokens, EOS included
  torch::Tensor entropies;       // [B, T] or undefined; required when entropy_coef != 0
  torch::Tensor rollout_is_weights;  // [B, T] or [B, 1] or undefined: off-policy correction w (rollout_correction.h),
                                     // multiplies the policy term (not the KL), no gradient; 0 = token left out
};

/// Metrics of a micro-batch as SUMS and COUNTS, so the trainer adds them over micro-batches (and
/// ranks) and divides once: mean = sum / count. Token metrics count masked tokens; for
/// importance_sampling_level = sequence the clip counts are per sequence (TRL's global_masked_mean).
/// Each is a scalar tensor [] in logprobs' dtype on logprobs' device, without a graph: reading one
/// is a device-to-host copy, which the trainer does once per step (StepMetrics).
struct LossMetrics {
  torch::Tensor clip_low_sum;     // rho < 1 - epsilon with A < 0
  torch::Tensor clip_high_sum;    // rho > 1 + epsilon_high with A > 0
  torch::Tensor clip_region_sum;  // either
  torch::Tensor clip_count;       // tokens (or sequences) the clip sums range over
  torch::Tensor kl_sum;           // sum of k3 KL over masked tokens (0 when beta == 0 and no ref_logprobs)
  torch::Tensor entropy_sum;      // sum of entropies over masked tokens (0 when not given)
  torch::Tensor token_count;      // masked tokens in this micro-batch
};

struct LossResult {
  torch::Tensor loss;  // scalar float32 (logprobs' dtype), differentiable w.r.t. logprobs (and entropies)
  LossMetrics metrics;
};

/// The loss of one micro-batch (formulas in the header comment). Masked positions (mask 0, or a
/// non-finite old/ref log-prob) contribute exactly 0 to the loss and the gradient, whatever the
/// log-probs hold there (even -inf or NaN). A row of mask zeros (an empty or truncated completion)
/// contributes 0. Throws grpo::InputError on mismatched shapes, a missing ref_logprobs with beta != 0,
/// a missing entropies with entropy_coef != 0, or a non-positive normaliser the loss_type needs.
LossResult compute_loss(const LossInputs& in, const LossOptions& opt, const LossNormaliser& norm);

/// grpo.mask_truncated_completions: the mask with the rows of truncated completions zeroed (TRL
/// `completion_mask * (~is_truncated).unsqueeze(1)`). mask [B, T] float or bool, truncated [B] bool;
/// returns the mask's dtype. Throws grpo::InputError on mismatched shapes.
torch::Tensor mask_truncated(const torch::Tensor& completion_mask, const torch::Tensor& truncated);

}  // namespace grpo::train
