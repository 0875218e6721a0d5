#pragma once
// Internal to the rollout engine (not a public header): appends sampled tokens to a completion and
// decides when it ends (EOS id, stop token id, stop string, length), filling its text and
// finish_reason then.
#include <cstdint>
#include <memory>
#include <vector>

#include "grpo/rollout/completion.h"
#include "grpo/rollout/incremental_decoder.h"
#include "grpo/rollout/sampling_params.h"
#include "grpo/rollout/stop_matcher.h"

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

/// One sequence being sampled: what the engine keeps per decode slot besides its cache row.
struct Sequence {
  int64_t max_new = 0;   // most new tokens (max_completion_length, less where the context ends)
  uint64_t stream = 0;   // its random stream (substream_seed of its prompt's seed, j)
  std::unique_ptr<IncrementalDecoder> dec;  // only when stop strings are configured
};

class CompletionBuilder {
 public:
  /// params, eos_ids (sorted) and tok must outlive the builder; params.stop_token_ids sorted.
  CompletionBuilder(const SamplingParams& params, const std::vector<int64_t>& eos_ids, const tok::Tokenizer& tok);

  /// A sequence of completion index j of a prompt: its stream, and a decoder when stop strings apply.
  Sequence start(int64_t max_new, uint64_t stream) const;

  /// Appends `token` (its logprob `logprob`) to c. Returns true when that ends the completion: its
  /// finish_reason, text and completion_length are then set (a stop string trims the tokens whose
  /// text reaches into it, see docs/rollout.md) and s.dec is released.
  bool append(Completion& c, Sequence& s, int64_t token, float logprob) const;

 private:
  const SamplingParams* params_;
  const std::vector<int64_t>* eos_ids_;
  const tok::Tokenizer* tok_;
  int64_t tok_vocab_;
  StopMatcher matcher_;
};

}  // namespace grpo::rollout
