#pragma once
// The rollout engine's continuous-batching scheduler, on slots only: no model, no tensors. A slot
// is one row of the decode batch (one row of the KV cache); the engine keeps its cache, the
// per-row sampling state and the "seen" mask in slot order and applies the index lists this class
// returns (placement, compaction) to them. Rules (docs/rollout.md, engine.h):
//  - the completions of each prompt wait in a queue of chunks of at most row_limit, prompts in
//    order; a chunk is prefilled as one row and admitted whole;
//  - admit() takes chunks from the head of the queue while the running rows plus the new ones fit
//    in row_limit and the cache rows held (slots, or more when the batch grows, plus one prefill
//    row per admitted chunk) fit in budget_rows;
//  - a finished sequence frees its slot; place() refills free slots in ascending order before it
//    appends new slots at the end; compact() drops the slots left free, keeping order.
// A PAUSED slot (a tool call of its sequence runs, rollout.tools) keeps its cache row and its place
// in the batch: compact() keeps it, admit() counts it as a live row, the decode step feeds it no
// token (a masked row).
#include <cstdint>
#include <deque>
#include <vector>

namespace grpo::rollout {

/// Completions first .. first + count - 1 of prompt `prompt`, admitted together (one prefill row).
struct Chunk {
  int64_t prompt = 0;
  int64_t first = 0;  // completion index j of the first one
  int64_t count = 0;
  bool operator==(const Chunk&) const = default;
};

/// How many rows the scheduler may hold at once.
struct SlotLimits {
  int64_t row_limit = 1;    // most rows decoded at once
  int64_t budget_rows = 0;  // most cache rows held at once, prefill rows included

  /// From rollout.max_batch_size, rollout.kv_cache_budget_tokens (0 = no budget) and the tokens of
  /// one cache row (`capacity`): budget_rows = budget / capacity (int64 max without a budget) and
  /// row_limit = min(max_batch_size, budget_rows - 1), one row being left for a prefill. Throws
  /// grpo::InputError when the budget holds fewer than two rows.
  static SlotLimits from(int64_t max_batch_size, int64_t kv_cache_budget_tokens, int64_t capacity);
};

enum class SlotState {
  FREE,     // its sequence finished; refilled by place() or dropped by compact()
  RUNNING,  // decoded every step
  PAUSED,   // waits for a tool result: holds its row, not decoded
};

/// Where place() put the sequences it was given.
struct Placement {
  std::vector<int64_t> slots;  // slot of each sequence, in the order given
  int64_t held_before = 0;     // slots held before the call (they keep their index)
  int64_t grown = 0;           // slots appended: held_before .. held_before + grown - 1
};

class SlotScheduler {
 public:
  /// Queues completions 0 .. num_generations - 1 of prompts 0 .. num_prompts - 1, in chunks of at
  /// most limits.row_limit. Throws grpo::InternalError when a count or limit is < 1 or
  /// budget_rows < 2.
  SlotScheduler(int64_t num_prompts, int64_t num_generations, SlotLimits limits);

  /// Removes from the queue and returns the chunks admitted now (possibly none), in queue order.
  std::vector<Chunk> admit();

  /// Gives each of `seqs` (sequence ids, the engine's completion indices) a RUNNING slot: the free
  /// slots in ascending order first, then new slots at the end.
  Placement place(const std::vector<int64_t>& seqs);

  /// The sequence in `slot` (RUNNING or PAUSED) finished: the slot becomes FREE.
  void finish(int64_t slot);
  /// RUNNING -> PAUSED (a tool call started) and back (its result was injected).
  void pause(int64_t slot);
  void resume(int64_t slot);

  /// Drops the FREE slots. Returns the old index of each slot kept, in order (its new index is its
  /// position in the list): the rows of the cache to keep.
  std::vector<int64_t> compact();

  int64_t held() const { return static_cast<int64_t>(slots_.size()); }  // slots (cache rows)
  int64_t running() const { return running_; }  // RUNNING slots
  int64_t paused() const { return paused_; }    // PAUSED slots
  SlotState state(int64_t slot) const;
  /// The sequence id in `slot`, or -1 when it is FREE.
  int64_t seq(int64_t slot) const;
  /// Chunks not admitted yet.
  const std::deque<Chunk>& queue() const { return queue_; }
  const SlotLimits& limits() const { return limits_; }

 private:
  struct Slot {
    SlotState state = SlotState::FREE;
    int64_t seq = -1;
  };
  SlotLimits limits_;
  std::deque<Chunk> queue_;
  std::vector<Slot> slots_;
  int64_t running_ = 0;
  int64_t paused_ = 0;
};

}  // namespace grpo::rollout
