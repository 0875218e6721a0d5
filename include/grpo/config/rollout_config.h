#pragma once
// rollout: sampling parameters as TRL's GRPOConfig / vLLM name them.
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/reflect.h"

namespace grpo::config {

/// rollout.tools: tool calls during generation (docs/rollout.md). A completion that emits
/// call_start[i] ... call_end[i] pauses; the code between runs in the sandbox and the result,
/// wrapped in output_prefix / output_suffix, is appended as injected tokens; then it resumes.
struct ToolsConfig {
  std::vector<std::string> enabled;  // [] = off; "python"
  std::vector<std::string> call_start = {"```python\n", "<code>"};
  std::vector<std::string> call_end = {"```", "</code>"};  // paired with call_start by index
  std::string output_prefix = "\n<output>\n";
  std::string output_suffix = "\n</output>\n";
  int max_tool_calls = 4;         // per completion; later calls are not run
  double timeout_s = 5.0;         // wall and CPU time of one call
  int memory_mb = 512;            // address space of one call
  int max_output_bytes = 1024;    // stdout captured per call, and the stderr tail shown
  int num_workers = 2;            // calls run at once
  bool overlap = true;            // false: each step waits for the calls issued before it

  bool on() const { return !enabled.empty(); }
  template <class V> void visit(V& v) {
    v("enabled", enabled, "Tools the policy may call during generation ([] = off): python.");
    v("call_start", call_start, "Strings that open a call (paired with call_end by index), matched on sampled text.");
    v("call_end", call_end, "Strings that close a call; the text between is the program.");
    v("output_prefix", output_prefix, "Text injected before a call's result.");
    v("output_suffix", output_suffix, "Text injected after a call's result.");
    v("max_tool_calls", max_tool_calls, "Calls run per completion; later calls are left as text, not run.", at_least(0));
    v("timeout_s", timeout_s, "Wall-clock and CPU-time limit of one call, seconds.", greater_than(0));
    v("memory_mb", memory_mb, "Address-space limit of one call, MiB.", at_least(16));
    v("max_output_bytes", max_output_bytes, "Stdout kept per call (the rest is dropped) and stderr tail shown on an error, bytes.", at_least(16));
    v("num_workers", num_workers, "Tool calls run at once.", at_least(1));
    v("overlap", overlap, "Other sequences decode while a call runs; false: a step waits for the calls issued before it, so rollouts are bit-reproducible.");
  }
};

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
  ToolsConfig tools;

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
    v("tools", tools, "Tool calls during generation (code run in the sandbox, its output injected).");
  }
};

}  // namespace grpo::config
