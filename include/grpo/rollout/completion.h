#pragma once
// One sampled completion, as the GRPO trainer consumes it.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::rollout {

enum class FinishReason {
  EOS,          // the model emitted one of its end-of-sequence ids (kept as the last token)
  STOP_STRING,  // a stop string appeared in the decoded text (tokens and text end before it)
  STOP_TOKEN,   // one of SamplingParams::stop_token_ids (kept as the last token)
  LENGTH        // max_completion_length tokens, or the model's context is full
};

/// "eos", "stop_string", "stop_token", "length".
std::string_view finish_reason_name(FinishReason r);

struct Completion {
  int64_t prompt_index = 0;        // index into the prompts passed to generate()
  std::vector<int64_t> token_ids;  // the completion's tokens (prompt excluded); an EOS or stop token
                                   // that ended it is the last one (it receives gradient later, also
                                   // when pad == eos)
  std::vector<float> logprobs;     // per token: log_softmax(logits / T)[token] of the sampling
                                   // policy before penalty/top-k/top-p/min-p (T == 0: raw logits);
                                   // same length as token_ids
  std::string text;                // decoded completion, special tokens skipped, stop string trimmed
  FinishReason finish_reason = FinishReason::LENGTH;
  int prompt_length = 0;           // tokens
  int completion_length = 0;       // tokens == token_ids.size()
  // Tool calls (rollout.tools, docs/rollout.md). token_ids holds the whole transcript: the tokens the
  // policy sampled and the tokens of the tool results injected after each call (prefilled into the
  // KV cache, never sampled); text is the decoded transcript, tool output included.
  std::vector<uint8_t> tool_mask;  // same length as token_ids: 1 = injected by a tool (its logprob is
                                   // 0 and must not be used: not the policy's action), 0 = sampled
  int tool_calls = 0;              // calls run (each injected one result)
  int tool_errors = 0;             // of which failed (non-zero exit, memory, output flood, signal, sandbox)
  int tool_timeouts = 0;           // of which hit the time limit
};

}  // namespace grpo::rollout
