#pragma once
// Logits processors and the categorical draw of one decode step. Everything runs on the logits'
// device: no host round trip per token (the engine copies the drawn ids back once per step).
// Order as in Hugging Face generate(): repetition penalty, temperature, top-k, top-p, min-p.
// Filtered entries become -inf; every processor keeps at least the most likely token.
#include <torch/torch.h>

#include "grpo/rollout/sampling_params.h"

namespace grpo::rollout {

/// CTRL repetition penalty (Keskar et al. 2019, sec. 4.1; HF RepetitionPenaltyLogitsProcessor):
/// for tokens already seen, a positive logit is divided by `penalty`, a negative one multiplied.
/// logits: [N, V] float32 (modified in place and returned); seen: [N, V] bool, true where the token
/// occurs in the row's prompt or completion so far. penalty == 1 returns logits unchanged.
torch::Tensor apply_repetition_penalty(torch::Tensor logits, const torch::Tensor& seen, double penalty);

/// Keeps the k largest logits of each row ([N, V] float32, in place); ties with the k-th are kept
/// (as HF TopKLogitsWarper). k <= 0 or k >= V: unchanged.
torch::Tensor apply_top_k(torch::Tensor logits, int64_t k);

/// Nucleus filter (Holtzman et al. 2020): keeps the smallest set of most likely tokens whose
/// probability sums to >= p, at least one. logits: [N, V] float32, in place. p >= 1: unchanged.
torch::Tensor apply_top_p(torch::Tensor logits, double p);

/// Min-p filter (Nguyen et al. 2024; HF MinPLogitsWarper): drops tokens whose probability is below
/// min_p times the row's largest probability. logits: [N, V] float32, in place. min_p <= 0: unchanged.
torch::Tensor apply_min_p(torch::Tensor logits, double min_p);

/// The whole chain for one step. logits: [N, V] (any float dtype; not modified); seen: [N, V] bool
/// or undefined when repetition_penalty == 1. Returns the processed logits [N, V] float32 after
/// the penalty, division by the temperature (skipped when it is 0) and the filters.
torch::Tensor process_logits(const torch::Tensor& logits, const SamplingParams& params, const torch::Tensor& seen);

/// Draws one token per row from softmax(processed), or the argmax when temperature == 0: row n
/// takes the first token whose CDF exceeds uniforms[n] * (its CDF total) (inverse-CDF sampling).
/// processed: [N, V] float32 from process_logits; uniforms: [N] float32 in [0, 1), any device
/// (moved to the logits' device). Returns [N] int64 on processed's device. The engine passes
/// counter_uniform() values, so a row's draw depends only on its own stream and position, not on
/// which other rows share the batch.
torch::Tensor draw_tokens(const torch::Tensor& processed, double temperature, const torch::Tensor& uniforms);

/// The same draw as draw_tokens(processed, T != 0, uniforms), plus logsumexp(processed) per row, so
/// that processed[n, ids[n]] - lse[n] is the drawn token's log-probability under softmax(processed).
/// On the CPU (float32) it is fused: one pass for the row max, exp(x - max) and the row sums by
/// MKL's vectorised exp, then a blocked scan that stops at the drawn token; the torch composition
/// (softmax, cumsum, searchsorted, logsumexp) cost 3-10x more at [64, 49152]. Elsewhere it is that
/// composition. The CDF is accumulated in another order than cumsum's, so a uniform that falls
/// within float rounding (~1e-7 relative) of a CDF step may pick the neighbouring token.
/// processed: [N, V] float32; uniforms: [N] float32 in [0, 1). Returns ids [N] int64 and lse [N]
/// float32 on processed's device. Throws grpo::InputError when the shapes disagree.
std::pair<torch::Tensor, torch::Tensor> draw_tokens_with_lse(const torch::Tensor& processed,
                                                             const torch::Tensor& uniforms);

/// Counter-based uniform in [0, 1) (24 bits, exact in float32): SplitMix64 finaliser of
/// stream + (counter + 1) * golden gamma (Steele, Lea, Flood 2014). Deterministic on every
/// platform; streams that differ give independent-looking sequences.
float counter_uniform(uint64_t stream, uint64_t counter);

/// Seed of stream `index` under `seed` (SplitMix64 of seed ^ mixed index): the per-prompt and
/// per-completion random streams of the engine.
uint64_t substream_seed(uint64_t seed, uint64_t index);

/// Log-probability of `tokens` ([N] int64) under log_softmax(logits / T) of the RAW logits ([N, V]),
/// T = temperature (T == 0: the raw logits), i.e. before penalty and filters: this is the policy
/// that TRL's GRPO training side evaluates for old_per_token_logps, so the importance ratio is 1 at
/// the first iteration. Returns [N] float32. (Not kernels::token_logprobs, the training side's
/// chunked logprob and entropy from hidden states and the head weight.)
torch::Tensor sampled_token_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature);

}  // namespace grpo::rollout
