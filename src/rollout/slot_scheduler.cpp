#include "grpo/rollout/slot_scheduler.h"

#include <algorithm>
#include <limits>

#include "grpo/util/error.h"

namespace grpo::rollout {

SlotLimits SlotLimits::from(int64_t max_batch_size, int64_t kv_cache_budget_tokens, int64_t capacity) {
  SlotLimits l{max_batch_size, std::numeric_limits<int64_t>::max()};
  if (kv_cache_budget_tokens > 0) {
    l.budget_rows = kv_cache_budget_tokens / capacity;
    GRPO_REQUIRE(l.budget_rows >= 2, "rollout.kv_cache_budget_tokens = ", kv_cache_budget_tokens,
                 " is too small: each cache row holds ", capacity,
                 " tokens (longest prompt + max_completion_length) and a prompt needs two rows (its prefill and "
                 "one completion); raise it to at least ",
                 2 * capacity);
    l.row_limit = std::min(l.row_limit, l.budget_rows - 1);
  }
  return l;
}

SlotScheduler::SlotScheduler(int64_t num_prompts, int64_t num_generations, SlotLimits limits) : limits_(limits) {
  GRPO_CHECK(num_prompts >= 1 && num_generations >= 1 && limits.row_limit >= 1 && limits.budget_rows >= 2,
             "SlotScheduler: ", num_prompts, " prompts, ", num_generations, " generations, row_limit ",
             limits.row_limit, ", budget_rows ", limits.budget_rows);
  // A group larger than a batch goes in chunks of row_limit.
  for (int64_t i = 0; i < num_prompts; ++i)
    for (int64_t j = 0; j < num_generations; j += limits.row_limit)
      queue_.push_back({i, j, std::min(limits.row_limit, num_generations - j)});
}

std::vector<Chunk> SlotScheduler::admit() {
  std::vector<Chunk> admitted;
  int64_t n_new = 0;
  while (!queue_.empty()) {
    const Chunk& ch = queue_.front();
    const int64_t rows_after = running_ + paused_ + n_new + ch.count;
    const int64_t n_prefill = static_cast<int64_t>(admitted.size()) + 1;
    // Free slots still hold their cache rows until compaction: the cache is max(held, rows after)
    // rows while the prefill rows exist.
    const bool fits_batch = rows_after <= limits_.row_limit;
    const bool fits_budget = std::max(held(), rows_after) + n_prefill <= limits_.budget_rows;
    if (!fits_batch || !fits_budget) break;
    admitted.push_back(ch);
    n_new += ch.count;
    queue_.pop_front();
  }
  return admitted;
}

Placement SlotScheduler::place(const std::vector<int64_t>& seqs) {
  Placement p;
  p.held_before = held();
  int64_t next = 0;  // free slots are searched in ascending order, each once
  for (int64_t seq : seqs) {
    while (next < p.held_before && slots_[next].state != SlotState::FREE) ++next;
    int64_t slot;
    if (next < p.held_before) {
      slot = next++;
    } else {
      slot = held();
      slots_.emplace_back();
      ++p.grown;
    }
    slots_[slot] = {SlotState::RUNNING, seq};
    ++running_;
    p.slots.push_back(slot);
  }
  return p;
}

void SlotScheduler::finish(int64_t slot) {
  GRPO_CHECK(slot >= 0 && slot < held() && slots_[slot].state != SlotState::FREE, "finish: slot ", slot,
             " is free");
  --(slots_[slot].state == SlotState::RUNNING ? running_ : paused_);
  slots_[slot] = {SlotState::FREE, -1};
}

void SlotScheduler::pause(int64_t slot) {
  GRPO_CHECK(slot >= 0 && slot < held() && slots_[slot].state == SlotState::RUNNING, "pause: slot ", slot,
             " is not running");
  slots_[slot].state = SlotState::PAUSED;
  --running_;
  ++paused_;
}

void SlotScheduler::resume(int64_t slot) {
  GRPO_CHECK(slot >= 0 && slot < held() && slots_[slot].state == SlotState::PAUSED, "resume: slot ", slot,
             " is not paused");
  slots_[slot].state = SlotState::RUNNING;
  ++running_;
  --paused_;
}

std::vector<int64_t> SlotScheduler::compact() {
  std::vector<int64_t> keep;
  std::vector<Slot> kept;
  for (int64_t s = 0; s < held(); ++s)
    if (slots_[s].state != SlotState::FREE) {
      keep.push_back(s);
      kept.push_back(slots_[s]);
    }
  slots_ = std::move(kept);
  return keep;
}

SlotState SlotScheduler::state(int64_t slot) const {
  GRPO_CHECK(slot >= 0 && slot < held(), "slot ", slot, " of ", held());
  return slots_[slot].state;
}

int64_t SlotScheduler::seq(int64_t slot) const {
  GRPO_CHECK(slot >= 0 && slot < held(), "slot ", slot, " of ", held());
  return slots_[slot].seq;
}

}  // namespace grpo::rollout
