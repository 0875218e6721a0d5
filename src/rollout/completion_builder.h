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
#include "tool_call_parser.h"

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

/// One sequence being sampled: what the engine keeps per decode slot besides its cache row.
struct Sequence {
  int64_t max_new = 0;   // most new tokens (max_completion_length, less where the context ends)
  uint64_t stream = 0;   // its random stream (substream_seed of its prompt's seed, j)
  std::unique_ptr<IncrementalDecoder> dec;  // only when stop strings or tools are configured
  ToolParseState tool;                      // tool calls (rollout.tools); tool.floor bounds stop strings too
};

class CompletionBuilder {
 public:
  /// params, eos_ids (sorted) and tok must outlive the builder; params.stop_token_ids sorted.
  /// with_tools: every sequence keeps a decoder (tool calls are found on its text).
  CompletionBuilder(const SamplingParams& params, const std::vector<int64_t>& eos_ids, const tok::Tokenizer& tok,
                    bool with_tools = false);

  /// A sequence of completion index j of a prompt: its stream, and a decoder when stop strings apply.
  Sequence start(int64_t max_new, uint64_t stream) const;

  /// Appends `token` (its logprob `logprob`) to c. Returns true when that ends the completion: its
  /// finish_reason, text and completion_length are then set (a stop string trims the tokens whose
  /// text reaches into it, see docs/rollout.md) and s.dec is released.
  bool append(Completion& c, Sequence& s, int64_t token, float logprob) const;

  /// Appends a tool result's tokens (tool_mask 1, logprob 0), cut to the room left. Returns true
  /// when that fills the room (the completion then ends with LENGTH). Stop strings and calls are
  /// looked for after them only.
  bool inject(Completion& c, Sequence& s, const std::vector<int64_t>& ids) const;

 private:
  const SamplingParams* params_;
  const std::vector<int64_t>* eos_ids_;
  void finish(Completion& c, Sequence& s, FinishReason reason) const;

  const tok::Tokenizer* tok_;
  int64_t tok_vocab_;
  bool with_tools_;
  StopMatcher matcher_;
};

}  // namespace grpo::rollout
