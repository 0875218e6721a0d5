#pragma once
// Internal to the rollout engine (not a public header): one step's draw for a batch of rows, from
// logits to host copies of the drawn ids and their logprobs.
//
// Row n's uniform is counter_uniform(streams[n], counters[n]): its completion's stream at its token
// position, so a completion's tokens do not depend on which rows share the batch (a prompt samples
// the same completions alone, in another batch, or on another rank).
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "grpo/rollout/sampling_params.h"

namespace grpo::rollout {

/// One step's draws, on the host.
struct StepDraws {
  std::vector<int64_t> ids;      // [n] the drawn tokens
  std::vector<float> logprobs;   // [n] their logprobs under the unfiltered tempered policy (Completion::logprobs)
};

class StepSampler {
 public:
  /// `params` must outlive the sampler. model_vocab: the logits' width V; tok_vocab: the
  /// tokenizer's vocabulary (ids from tok_vocab to V, padding of the embedding matrix, are never
  /// drawn).
  StepSampler(const SamplingParams& params, int64_t model_vocab, int64_t tok_vocab);

  /// logits: [n, V] on the model's device; seen: [n, V] bool with a repetition penalty, else
  /// undefined; streams, counters: [n]. One device->host copy: the host needs the ids for the
  /// EOS/stop decisions and the output.
  StepDraws operator()(const torch::Tensor& logits, const torch::Tensor& seen, const std::vector<uint64_t>& streams,
                       const std::vector<uint64_t>& counters) const;

 private:
  const SamplingParams* params_;
  int64_t tok_vocab_;
  int64_t model_vocab_;
  bool unfiltered_;  // sampling from logits / T unchanged: no penalty, no filter, no padded ids cut off
};

}  // namespace grpo::rollout
