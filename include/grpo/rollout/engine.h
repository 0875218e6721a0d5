#pragma once
// The rollout engine: G sampled completions per prompt with a KV-cached policy.
//
// Scheduling (continuous batching over model::KVCache; the rules live in SlotScheduler,
// slot_scheduler.h, which works on slots alone):
//  - each distinct prompt is prefilled once; its cache row is copied into its G completion slots
//    (a prompt with more completions than fit in one batch is prefilled once per admitted chunk);
//  - a finished sequence leaves the batch at the end of the step that finished it: its slot is
//    refilled from the queue of waiting prompts, or, when none wait, the cache is compacted to the
//    live rows, so decode work tracks live sequences, not the longest one;
//  - the decode batch holds at most max_batch_size rows, and (when kv_cache_budget_tokens > 0) the
//    cache rows held at once (live rows plus the prefill rows of prompts being admitted), each of
//    capacity longest prompt + max_completion_length tokens, never exceed that many tokens.
// Sampling is per sequence: completion j of prompt i draws its token t from the counter-based
// uniform (substream_seed(prompt_seed_i, j), t), so its tokens depend on its prompt's seed, j and
// the policy, not on the other prompts of the call, the batch limits or the number of ranks
// (up to float rounding of logits computed in batches of other shapes, which moves a draw only
// when a uniform lands within a rounding error of a CDF step). The logits stay on the model's
// device; the host copies the drawn ids back (stop conditions) and sends N uniforms per step.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "grpo/config/rollout_config.h"
#include "grpo/model/packed_linear.h"
#include "grpo/model/transformer.h"
#include "grpo/rollout/completion.h"
#include "grpo/rollout/decode_head.h"
#include "grpo/rollout/sampling_params.h"
#include "grpo/rollout/tools.h"

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

/// One tool call's timeline (rollout.tools), in seconds. "Injected" is the moment the result's
/// tokens are in the sequence's row of the batch's KV cache, before the next token's draw (on CUDA
/// the forward is then queued). Two paths: on a CPU model with overlap on, the worker that ran the
/// call tokenizes the result and prefills the call-end token + result tokens on a copy of the
/// paused row at once (`side`, while the engine decodes), and the engine copies the new slots into
/// the row before its next step; otherwise the engine tokenizes and prefills (one forward for the
/// results it takes together) before its next step. A result cut to the room left ends its
/// completion with no prefill: there "injected" is the append.
struct ToolCallTiming {
  double queued = 0.0;   // call issued -> a worker starts its sandbox (waiting for a free worker)
  double run = 0.0;      // sandbox start -> result ready (the executor's whole run, on the worker)
  double prefill = 0.0;  // result ready -> tokenized and prefilled on the worker (0 unless `side`)
  double wait = 0.0;     // then -> the engine takes it (the decode step in flight ends)
  double inject = 0.0;   // taken -> injected (side: append and copy of the slots; else tokenize, append, prefill)
  bool prestarted = false;  // the call ran in an interpreter started before it (ToolResult::prestarted)
  bool side = false;        // its result was prefilled on the worker (the first path above)
  double start_to_inject() const { return run + prefill + wait + inject; }
  double issue_to_inject() const { return queued + start_to_inject(); }
};

/// What one generate() call did (for logs and the benchmark).
struct RolloutStats {
  int64_t prompt_tokens = 0;      // prefilled tokens (each distinct prompt once per admission)
  int64_t completion_tokens = 0;  // sampled tokens kept in completions
  int64_t decode_steps = 0;       // batched forward passes of one token per row
  int64_t decoded_rows = 0;       // sum over decode steps of the batch size
  int64_t peak_batch = 0;         // largest decode batch
  int64_t peak_cache_tokens = 0;  // largest (rows x capacity) held
  double prefill_seconds = 0.0;   // wall time in prefill forwards
  double decode_seconds = 0.0;    // wall time in everything else
  int64_t tool_calls = 0;         // tool calls run (rollout.tools)
  int64_t injected_tokens = 0;    // tool-result tokens appended (included in completion_tokens)
  double tool_run_seconds = 0.0;  // sum over calls of the run itself (ToolResult::run_seconds)
  double tool_start_to_inject_seconds = 0.0;  // sum over calls: sandbox start -> tokens injected (ToolCallTiming)
  double tool_issue_to_inject_seconds = 0.0;  // sum over calls: call issued -> tokens injected, queueing included
  std::vector<ToolCallTiming> tool_call_timings;  // per call, in the order of injection
};

/// Limits of the scheduler (from the rollout: section).
struct EngineLimits {
  int max_batch_size = 64;             // most rows decoded at once
  int64_t kv_cache_budget_tokens = 0;  // 0 = no limit
};

class RolloutEngine {
 public:
  /// `model` and `tokenizer` must outlive the engine. The EOS set is params.eos_token_ids plus every
  /// eos id of tokenizer.special() plus model->spec().eos_token_id (when >= 0). Throws
  /// grpo::InputError when params are invalid (see SamplingParams::validate), a limit is < 1 or
  /// an eos/stop id is outside the model's vocabulary.
  RolloutEngine(model::Transformer model, const tok::Tokenizer& tokenizer, SamplingParams params,
                EngineLimits limits = {});
  /// Same, taking params and limits from the rollout: section.
  RolloutEngine(model::Transformer model, const tok::Tokenizer& tokenizer, const config::RolloutConfig& cfg);

  /// Samples `num_generations` completions for each prompt (token ids, no padding); returns
  /// prompt_ids.size() * num_generations completions, completion j of prompt i at i * G + j.
  /// Runs under torch::InferenceMode with the model in eval mode (its mode is restored after). A prompt of length L gets at most
  /// min(max_completion_length, max_position_embeddings - L) new tokens. Throws grpo::InputError
  /// for: no prompts, an empty prompt, a prompt with L >= max_position_embeddings, an id outside
  /// the vocabulary, num_generations < 1, or a kv_cache_budget_tokens too small for two rows.
  std::vector<Completion> generate(const std::vector<std::vector<int64_t>>& prompt_ids, int num_generations,
                                   uint64_t seed);
  /// Same with one seed per prompt (prompt_seeds.size() == prompt_ids.size(), else InputError);
  /// generate(ids, G, seed) uses prompt_seeds[i] = substream_seed(seed, i). The GRPO stage keys
  /// each prompt's seed on its place in the global batch, so data parallel ranks sample exactly
  /// what one process would.
  std::vector<Completion> generate(const std::vector<std::vector<int64_t>>& prompt_ids, int num_generations,
                                   const std::vector<uint64_t>& prompt_seeds);

  /// Text prompts: each is encoded as is (bos prepended when the tokenizer asks for one), then
  /// generate(). Throws as generate().
  std::vector<Completion> generate_text(const std::vector<std::string>& prompts, int num_generations, uint64_t seed);

  /// trainer.bf16 (set by the train layer and `grpo generate` from the trainer: section; default
  /// off). On a CPU model, generate() then computes as the bf16 training forward does: the
  /// transformer under CPU bf16 autocast, its linears on bf16 copies of the weights packed for
  /// oneDNN (half the bytes of the float32 packing), a bf16 KV cache; the head, the logits,
  /// sampling and the returned log-probs stay float32. The model's weights stay float32. On other
  /// devices nothing changes (CUDA rollouts stay float32 for now).
  void set_bf16(bool on) { bf16_ = on; }
  /// Whether generate() runs in bf16: set_bf16(true) and the model is on the CPU.
  bool bf16_active() const;

  /// Tool calls during generation (rollout.tools, docs/rollout.md; tools.h). The config constructor
  /// calls set_tools(cfg.tools) when cfg.tools.enabled is not empty, which builds the sandbox-backed
  /// `python` tool; `exec` replaces it (tests, other tools). cfg is validated (validate_tools);
  /// an empty cfg.enabled turns tools off.
  void set_tools(const config::ToolsConfig& cfg, std::shared_ptr<const ToolExecutor> exec = nullptr);
  const config::ToolsConfig& tools() const { return tools_; }
  /// Whether a tool result is prefilled by the worker that ran its call, while the engine decodes
  /// (ToolCallTiming::side), on a CPU model with rollout.tools.overlap when the engine's intra-op
  /// threads leave a core to spare (torch's threads < the host's cores); elsewhere (CUDA) the
  /// engine prefills every result itself before its next step. on: every result; off: none. Unset
  /// (the default): per result, where it is sooner than the engine's own prefill (other calls in
  /// flight, or more of the step in flight left than a worker's prefill takes; measured in
  /// docs/benchmarks.md).
  void set_tool_side_prefill(bool on) { tool_side_prefill_ = on ? 1 : 0; }

  /// Tests only (a scripted policy): when set, the token of completion `c` at position `t` is
  /// force(c, t) instead of a draw whenever that is >= 0; its logprob is the policy's for it.
  void set_forced_tokens_for_testing(std::function<int64_t(int64_t c, int64_t t)> force) { force_ = std::move(force); }

  /// Called after each step with (finished completions so far, total completions); for progress bars.
  void set_progress_callback(std::function<void(int64_t, int64_t)> cb) { progress_ = std::move(cb); }

  const SamplingParams& params() const { return params_; }
  /// The sorted, de-duplicated ids that end a completion as EOS.
  const std::vector<int64_t>& eos_ids() const { return eos_ids_; }
  /// Statistics of the last generate() call.
  const RolloutStats& last_stats() const { return stats_; }
  /// The packed layer weights of the last generate() (for tests: packed_dtype() says which
  /// arithmetic the linears ran in).
  const model::PackedWeights& packed_weights() const { return packed_; }

 private:
  model::Transformer model_;
  const tok::Tokenizer* tok_;
  SamplingParams params_;
  EngineLimits limits_;
  std::vector<int64_t> eos_ids_;
  RolloutStats stats_;
  std::unique_ptr<DecodeHead> head_;  // the packed head weight, kept while the weights are unchanged
  model::PackedWeights packed_;       // packed layer weights (CPU float32 or bf16), repacked when they change
  bool bf16_ = false;                 // set_bf16()
  std::function<void(int64_t, int64_t)> progress_;
  config::ToolsConfig tools_;                   // set_tools(); off by default
  std::shared_ptr<const ToolExecutor> tool_exec_;  // when tools_.on()
  int tool_side_prefill_ = -1;                     // set_tool_side_prefill(): 1, 0; -1 per result
  std::function<int64_t(int64_t, int64_t)> force_;
};

}  // namespace grpo::rollout
