#pragma once
// Prompt + completion token batches for the training forward, laid out as TRL does: prompts
// left-padded to a common width P, completions right-padded to C, so completion token j of every
// row sits at column P + j and its log-prob comes from the hidden state at column P + j - 1.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "grpo/model/transformer.h"

namespace grpo::train {

struct TokenBatch {
  torch::Tensor input_ids;        // [B, P + C] int64 (padding holds pad_id)
  torch::Tensor attention_mask;   // [B, P + C] int64, 1 = real token
  torch::Tensor completion_ids;   // [B, C] int64 (pad_id after each completion)
  torch::Tensor completion_mask;  // [B, C] float32, 1 for completion tokens (an ending EOS included)
  int64_t prompt_width = 0;       // P
};

/// Builds the batch on `device`. Rows i take prompts[i] and completions[i]; a completion may be
/// empty (its mask row is all zero). `injected` (empty, or one entry per row, each null or of the
/// completion's length): tokens a tool put into the completion (rollout::Completion::tool_mask,
/// 1 = injected). They stay in input_ids and attention_mask (the policy reads them as context) but
/// get completion_mask 0: they are not the policy's actions, so the loss, the KL, the entropy and
/// every token count leave them out. Throws grpo::InputError when the lists differ in length, a
/// prompt is empty or a mask's length is not its completion's.
TokenBatch make_token_batch(const std::vector<const std::vector<int64_t>*>& prompts,
                            const std::vector<const std::vector<int64_t>*>& completions, int64_t pad_id,
                            torch::Device device, const std::vector<const std::vector<uint8_t>*>& injected = {});

/// Per-token log-probs (and entropies) of the completion tokens under `model`:
///   logp[b, j] = log_softmax(logits(h[b, P + j - 1]) / temperature)[completion_ids[b, j]]
/// through the chunked token_logprobs op (never materialising [B, C, V] log-softmax). Returns
/// {logp [B, C] float32, entropy [B, C] float32}, differentiable when grad mode is on. Also
/// returns the MoE auxiliary loss of the forward (scalar; 0 for dense models). `bf16`
/// (trainer.bf16): the transformer forward runs under bf16 autocast on the model's device, CUDA
/// or CPU (model::Bf16Autocast); the log-softmax stays float32, outside the scope, and so does the
/// head's product on CUDA; on the CPU the head multiplies bf16 roundings of hidden and weight into
/// bf16 logits, widened to float32 (autocast's lm_head; what the CPU bf16 rollout samples from). `chunk_size`: kernels.logprob_chunk_size, the
/// vocabulary rows per chunk of the op (peak extra memory tokens x chunk_size logits).
struct CompletionLogprobs {
  torch::Tensor logprobs;   // [B, C] float32
  torch::Tensor entropies;  // [B, C] float32
  torch::Tensor aux_loss;   // scalar float32
  std::vector<torch::Tensor> expert_load;  // per MoE layer [E]
};
CompletionLogprobs completion_logprobs(model::Transformer& model, const TokenBatch& batch, double temperature,
                                       bool bf16 = false, int64_t chunk_size = 4096);

/// The rollout's sampled-token log-probs laid out as batch.completion_ids: [B, C] float32 on the
/// CPU, row i from completions[i] (zeros past its length). Throws grpo::InputError when a row has
/// more log-probs than the batch has columns.
torch::Tensor rollout_logprob_matrix(const std::vector<const std::vector<float>*>& logprobs, int64_t columns);

/// How far the trainer's log-probs of the sampled tokens are from the rollout's (same weights,
/// different kernels and, under trainer.bf16, different rounding), over the tokens where
/// `mask` [B, C] is non-zero. With r = train - rollout (both [B, C]):
///   abs_sum = sum |r|,  k3_sum = sum (exp(r) - r - 1)  (Schulman's k3: an unbiased estimate of
///   KL(rollout || trainer) from tokens the rollout sampled, >= 0 term by term),  count = sum mask.
/// Scalars (float64 sums, on the inputs' device), no gradient.
struct LogprobMismatch {
  torch::Tensor abs_sum, k3_sum, count;
};
LogprobMismatch logprob_mismatch(const torch::Tensor& train, const torch::Tensor& rollout, const torch::Tensor& mask);

}  // namespace grpo::train
