// The rollout engine's slot scheduler on its own, without a model: admission order and limits,
// refill of finished slots, compaction indices and the cache budget, against sequences of events
// worked out by hand from the rules in slot_scheduler.h.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "grpo/rollout/slot_scheduler.h"
#include "grpo/util/error.h"

using namespace grpo::rollout;

namespace {

constexpr int64_t kNoBudget = std::numeric_limits<int64_t>::max();

using Ids = std::vector<int64_t>;

// seq(s) of every slot, -1 for a free one.
Ids seqs(const SlotScheduler& s) {
  Ids out;
  for (int64_t k = 0; k < s.held(); ++k) out.push_back(s.seq(k));
  return out;
}

}  // namespace

TEST(SlotLimits, BudgetInRowsLeavesOneForAPrefill) {
  // No budget: the batch limit alone.
  auto a = SlotLimits::from(64, 0, 105);
  EXPECT_EQ(a.row_limit, 64);
  EXPECT_EQ(a.budget_rows, kNoBudget);
  // 700 tokens of rows of 105: 6 rows (630 tokens), of which one is kept for a prefill.
  auto b = SlotLimits::from(64, 700, 105);
  EXPECT_EQ(b.budget_rows, 6);
  EXPECT_EQ(b.row_limit, 5);
  // A batch limit below the budget's stays.
  auto c = SlotLimits::from(3, 700, 105);
  EXPECT_EQ(c.budget_rows, 6);
  EXPECT_EQ(c.row_limit, 3);
  // Two rows exactly (a prefill and one completion) is the least that works.
  auto d = SlotLimits::from(64, 210, 105);
  EXPECT_EQ(d.budget_rows, 2);
  EXPECT_EQ(d.row_limit, 1);
  EXPECT_THROW(SlotLimits::from(64, 209, 105), grpo::InputError);
}

TEST(SlotScheduler, QueuesPromptsInOrderInChunksOfTheBatchLimit) {
  // 2 prompts x 5 completions, at most 2 rows at once: chunks of 2, 2, 1 per prompt.
  SlotScheduler s(2, 5, {2, kNoBudget});
  const std::vector<Chunk> expect = {{0, 0, 2}, {0, 2, 2}, {0, 4, 1}, {1, 0, 2}, {1, 2, 2}, {1, 4, 1}};
  EXPECT_EQ(std::vector<Chunk>(s.queue().begin(), s.queue().end()), expect);
  EXPECT_EQ(s.held(), 0);
  EXPECT_EQ(s.running(), 0);
}

TEST(SlotScheduler, AdmitsWhatFitsTheBatchThenRefillsFreedSlotsInOrder) {
  // 3 prompts x 2 completions, batch of 4: prompts 0 and 1 go in first (4 rows), prompt 2 waits.
  SlotScheduler s(3, 2, {4, kNoBudget});
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 0, 2}, {1, 0, 2}}));
  auto p = s.place({0, 1, 2, 3});
  EXPECT_EQ(p.slots, (Ids{0, 1, 2, 3}));
  EXPECT_EQ(p.held_before, 0);
  EXPECT_EQ(p.grown, 4);
  EXPECT_EQ(s.running(), 4);
  EXPECT_TRUE(s.admit().empty());  // the batch is full

  // Completion 1 (slot 1) finishes: 3 running + 2 new > 4, so nothing is admitted yet.
  s.finish(1);
  EXPECT_EQ(s.state(1), SlotState::FREE);
  EXPECT_EQ(seqs(s), (Ids{0, -1, 2, 3}));
  EXPECT_TRUE(s.admit().empty());
  // Completion 2 (slot 2) finishes too: prompt 2's two completions take slots 1 and 2, in order.
  s.finish(2);
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{2, 0, 2}}));
  p = s.place({4, 5});
  EXPECT_EQ(p.slots, (Ids{1, 2}));
  EXPECT_EQ(p.held_before, 4);
  EXPECT_EQ(p.grown, 0);
  EXPECT_EQ(seqs(s), (Ids{0, 4, 5, 3}));
  EXPECT_TRUE(s.queue().empty());
  // Nothing is free: compaction keeps every slot where it is.
  EXPECT_EQ(s.compact(), (Ids{0, 1, 2, 3}));
}

TEST(SlotScheduler, NewRowsFillFreeSlotsFirstThenGrowTheBatch) {
  // Batch of 5; prompt 0's 3 completions run, then 0 and 2 finish: 1 running, 2 free slots.
  SlotScheduler s(3, 3, {5, kNoBudget});
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 0, 3}}));  // 3 + 3 > 5: prompt 1 waits
  s.place({0, 1, 2});
  s.finish(0);
  s.finish(2);
  // 1 running + 3 new <= 5: prompt 1 goes in; prompt 2 would make 7.
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{1, 0, 3}}));
  // One of prompt 1's completions ended on its first token: two survivors take slots 0 and 2.
  auto p = s.place({3, 5});
  EXPECT_EQ(p.slots, (Ids{0, 2}));
  EXPECT_EQ(p.grown, 0);
  // Then prompt 2 once room exists (slot 1 finishes: 2 running + 3 = 5): free slot 1, then 3, 4.
  s.finish(1);
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{2, 0, 3}}));
  p = s.place({6, 7, 8});
  EXPECT_EQ(p.slots, (Ids{1, 3, 4}));
  EXPECT_EQ(p.held_before, 3);
  EXPECT_EQ(p.grown, 2);
  EXPECT_EQ(seqs(s), (Ids{3, 6, 5, 7, 8}));
}

TEST(SlotScheduler, CompactionDropsFreeSlotsAndReturnsTheKeptIndices) {
  SlotScheduler s(1, 6, {6, kNoBudget});
  s.admit();
  s.place({0, 1, 2, 3, 4, 5});
  s.finish(1);
  s.finish(4);
  s.finish(5);
  EXPECT_EQ(s.compact(), (Ids{0, 2, 3}));  // the rows of the cache to keep, in order
  EXPECT_EQ(s.held(), 3);
  EXPECT_EQ(s.running(), 3);
  EXPECT_EQ(seqs(s), (Ids{0, 2, 3}));
  // Slot numbers are new: completion 3 is in slot 2 now.
  s.finish(2);
  EXPECT_EQ(s.compact(), (Ids{0, 1}));
  EXPECT_EQ(seqs(s), (Ids{0, 2}));
  s.finish(0);
  s.finish(1);
  EXPECT_TRUE(s.compact().empty());
  EXPECT_EQ(s.held(), 0);
}

TEST(SlotScheduler, BudgetCountsHeldRowsAndOnePrefillRowPerChunk) {
  // budget 6 rows, batch 5; 3 prompts x 2. Prompt 0: max(0, 2) + 1 prefill = 3 <= 6; prompt 1:
  // max(0, 4) + 2 prefills = 6 <= 6; prompt 2 would need 6 running rows > 5.
  SlotScheduler s(3, 2, {5, 6});
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 0, 2}, {1, 0, 2}}));
  s.place({0, 1, 2, 3});
  // One finished: 3 running + 2 = 5 fits the batch, and the 4 slots held (the free one keeps its
  // cache row until compaction) + 1 prefill = 6 fits the budget (max(4, 5) + 1 = 6).
  s.finish(0);
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{2, 0, 2}}));
}

TEST(SlotScheduler, BudgetStopsAdmissionThatTheBatchWouldAllow) {
  // budget 5 rows, batch 4, 6 prompts x 1 (chunks of one).
  SlotScheduler s(6, 1, {4, 5});
  // Nothing held: max(0, 1) + 1 = 2, max(0, 2) + 2 = 4, max(0, 3) + 3 = 6 > 5: two, though the
  // batch would take three.
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 0, 1}, {1, 0, 1}}));
  s.place({0, 1});
  // 2 held: prompt 2: max(2, 3) + 1 = 4 <= 5; prompt 3: max(2, 4) + 2 = 6 > 5.
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{2, 0, 1}}));
  s.place({2});
  // 3 held: prompt 3: max(3, 4) + 1 = 5; prompt 4 would make 5 running rows > 4.
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{3, 0, 1}}));
  EXPECT_EQ(s.place({3}).slots, (Ids{3}));
  // Slots 0, 1, 2 finish: 1 running, but the 4 slots keep their cache rows until compaction.
  // Prompt 4: max(4, 2) + 1 = 5; prompt 5: max(4, 3) + 2 = 6 > 5 (3 rows + 2 prefills would fit).
  s.finish(0);
  s.finish(1);
  s.finish(2);
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{4, 0, 1}}));
  EXPECT_EQ(s.place({4}).slots, (Ids{0}));
  EXPECT_EQ(s.compact(), (Ids{0, 3}));
  EXPECT_EQ(seqs(s), (Ids{4, 3}));
  // Compacted to 2 slots: prompt 5 goes in, max(2, 3) + 1 = 4.
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{5, 0, 1}}));
}

TEST(SlotScheduler, AGroupLargerThanTheBatchGoesInChunks) {
  // 1 prompt x 5, batch 2: chunks (0, 0, 2), (0, 2, 2), (0, 4, 1), one at a time.
  SlotScheduler s(1, 5, {2, kNoBudget});
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 0, 2}}));
  s.place({0, 1});
  s.finish(0);
  EXPECT_TRUE(s.admit().empty());  // 1 + 2 > 2
  s.finish(1);
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 2, 2}}));
  // Both of the new ones ended on their first token: nothing placed, the slots stay free.
  auto p = s.place({});
  EXPECT_TRUE(p.slots.empty());
  EXPECT_EQ(s.compact(), Ids{});
  EXPECT_EQ(s.admit(), (std::vector<Chunk>{{0, 4, 1}}));
  EXPECT_TRUE(s.queue().empty());
}

TEST(SlotScheduler, RejectsFinishingAFreeSlot) {
  SlotScheduler s(1, 2, {2, kNoBudget});
  s.admit();
  s.place({0, 1});
  s.finish(0);
  EXPECT_THROW(s.finish(0), grpo::InternalError);
  EXPECT_THROW(s.finish(2), grpo::InternalError);
  EXPECT_THROW(SlotScheduler(1, 2, {0, kNoBudget}), grpo::InternalError);
}
