#pragma once
// How completions are sampled: the rollout: config section resolved against a model and tokenizer.
// Names follow TRL's GRPOConfig / vLLM's SamplingParams.
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/rollout_config.h"

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

struct SamplingParams {
  double temperature = 1.0;         // 0 = greedy (argmax after the repetition penalty)
  double top_p = 1.0;               // (0, 1]; 1 = off
  int top_k = 0;                    // 0 = off
  double min_p = 0.0;               // [0, 1]; 0 = off
  double repetition_penalty = 1.0;  // > 0; 1 = off (CTRL, Keskar et al. 2019, eq. in sec. 4.1)
  int max_completion_length = 256;  // most new tokens per completion, >= 1
  std::vector<std::string> stop;    // stop strings (matched on decoded completion text)
  std::vector<int64_t> stop_token_ids;  // end a completion as STOP_TOKEN
  std::vector<int64_t> eos_token_ids;   // end a completion as EOS (the engine adds the model's and tokenizer's)
  bool ignore_eos = false;              // EOS ids do not end a completion (benchmarks: fixed lengths)

  /// Copies the rollout: section; eos ids start empty (the engine adds those the tokenizer and model
  /// declare).
  static SamplingParams from_config(const config::RolloutConfig& cfg);

  /// Throws grpo::InputError naming the field ("rollout.top_p = 0: expected (0, 1]") when a value is
  /// out of range, a stop string is empty or a token id is negative.
  void validate() const;
};

}  // namespace grpo::rollout
