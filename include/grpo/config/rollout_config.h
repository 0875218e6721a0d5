#pragma once
// rollout: sampling parameters as TRL's GRPOConfig / vLLM name them.
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/reflect.h"

namespace grpo::config {

struct RolloutConfig {
  int max_completion_length = 256;  // tokens
  double temperature = 1.0;         // 0 = greedy
  double top_p = 1.0;
  int top_k = 0;                    // 0 = off
  double min_p = 0.0;               // 0 = off
  double repetition_penalty = 1.0;  // 1 = off
  std::vector<std::string> stop;    // stop strings, matched on decoded text
  std::vector<int> stop_token_ids;  // in addition to every EOS id the model declares
  int64_t kv_cache_budget_tokens = 0;  // 0 = no limit
  int max_batch_size = 64;          // sequences decoded at once

  template <class V> void visit(V& v) {
    v("max_completion_length", max_completion_length, "Maximum new tokens per completion.", at_least(1));
    v("temperature", temperature, "Sampling temperature; 0 means greedy decoding.", at_least(0));
    v("top_p", top_p, "Nucleus sampling: smallest token set with cumulative probability >= top_p.", above_up_to(0, 1));
    v("top_k", top_k, "Keep only the k most likely tokens; 0 = off.", at_least(0));
    v("min_p", min_p, "Drop tokens whose probability is below min_p times the top token's; 0 = off.", between(0, 1));
    v("repetition_penalty", repetition_penalty, "CTRL-style penalty on tokens already in prompt or completion; 1 = off.", greater_than(0));
    v("stop", stop, "Stop strings, matched on decoded text across token boundaries and trimmed from the text.");
    v("stop_token_ids", stop_token_ids, "Token ids that end a completion, besides the model's EOS ids.", at_least(0));
    v("kv_cache_budget_tokens", kv_cache_budget_tokens, "Most tokens of KV cache held at once; 0 = no limit.", at_least(0));
    v("max_batch_size", max_batch_size, "Most sequences in one decode batch.", at_least(1));
  }
};

}  // namespace grpo::config
