#pragma once
// Internal to the rollout engine (not a public header): a tool result's prefill run on the tool
// worker thread that ran the call, on a copy of the paused row, while the engine decodes the other
// rows (rollout.tools.overlap on a CPU model).
//
// Why: a result that is ready mid-step used to wait for the step in flight, then for its own prefill
// forward on the engine thread, which every other row of the batch waited for too (in a burst of
// calls, the batched prefill of all the results of a step). Here the worker prefills it at once on
// the other core, and the engine only copies the new slots into the row's cache before the next step.
// A paused row's filled slots are not written until it resumes, so the worker reads them through
// views taken at the pause (model::row_slot_views) without holding up the engine.
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpo/config/rollout_config.h"
#include "grpo/model/kv_cache_rows.h"
#include "grpo/model/packed_linear.h"
#include "grpo/model/transformer.h"

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

/// What the side prefills of one generate() share.
struct SidePrefillContext {
  model::Transformer model;
  model::PackedWeights* packed;  // the engine's (packed by its first forward, only read after), or null
  bool bf16;                     // rollout_forward(..., bf16), bf16 cache
  const tok::Tokenizer& tok;
  const config::ToolsConfig& tools;
  bool automatic = false;  // choose per result (worth_it()); else every result is prefilled here
  std::mutex mu;           // one side prefill at a time: the engine's own forward holds the other core

  // What worth_it() reads: the engine's steps (engine thread), the calls in flight and the side
  // prefills' time (workers).
  std::atomic<int> in_flight{0};          // calls issued whose results are not injected yet
  std::atomic<int64_t> step_began_ns{0};  // steady clock of the decode step in flight; 0 between steps
  std::atomic<double> step_s{0.0};        // a decode step's time (moving average)
  std::atomic<double> prefill_s{0.0};     // a side prefill's time (moving average; 0 until the first)

  /// Whether the worker that ran a call should prefill its result (always, unless `automatic`).
  /// The worker's prefill pays when the engine would not take the result before it is done: other
  /// calls are in flight (a burst: the engine's prefills of their results would queue this one
  /// behind them, on one core), or the decode step in flight has longer left to run than a side
  /// prefill takes (long steps, e.g. a large vocabulary). Otherwise (a lone result, a short step,
  /// or no step: the engine waits for results) the engine's own prefill at its next step is sooner,
  /// and the worker leaves the core to the interpreters' starts.
  bool worth_it() const;
  void step_begins();  // engine thread, around each decode step
  void step_ends();
};

/// A paused row as the engine leaves it (taken at the pause, on the engine thread).
struct PausedRow {
  model::RowSlots prefix;  // views of its filled slots 0 .. len-1
  int64_t pending = 0;     // the sampled token that closed the call, not in the cache yet
  int64_t room = 0;        // tokens the completion may still take (max_new less its tokens so far)
};

/// A result prefilled on the worker.
struct SidePrefill {
  std::vector<int64_t> ids;   // tool_result_tokens(result body)
  int64_t begin = 0;          // the row's length at the pause: the feed belongs at slots begin ..
  model::RowSlots fed;        // K/V of the feed (pending token, then ids): [Hkv, 1 + ids, head_dim] per layer
  torch::Tensor last_hidden;  // [1, D]: the hidden state after the feed's last token
};

/// Tokenizes `body` as the engine would, and, when the result fits the room left (so the completion
/// goes on after it), runs pending + ids through the model after a copy of row.prefix. Returns the
/// ids alone (fed empty, last_hidden undefined) when it does not fit. Runs on a tool worker thread.
std::shared_ptr<SidePrefill> side_prefill(SidePrefillContext& ctx, const PausedRow& row, const std::string& body);

}  // namespace grpo::rollout
