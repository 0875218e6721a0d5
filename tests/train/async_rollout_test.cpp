// The asynchronous rollout's schedule and thread (train/async_rollout.h) with stand-in snapshots
// and generations: which weights version samples each generation, the staleness bound under a
// slow rollout and under a slow trainer (delays injected here), which side waits, how many
// snapshots are held, and errors of the rollout thread reaching the trainer.
#include "grpo/train/async_rollout.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace grpo::train {
namespace {

TEST(AsyncSchedule, VersionIsAtMostStalenessBehindAndDrainsAtCheckpoints) {
  // Hand-worked from the rule: max(g - S, last checkpoint step <= g), checkpoints at start + k * every.
  AsyncSchedule one{1, 0, 0, 100};
  EXPECT_EQ(one.version_of(0), 0);
  EXPECT_EQ(one.version_of(1), 0);
  EXPECT_EQ(one.version_of(2), 1);
  EXPECT_EQ(one.version_of(7), 6);
  AsyncSchedule two{2, 0, 3, 100};
  const int64_t want[] = {0, 0, 0, 3, 3, 3, 6, 6, 6, 9};
  for (int64_t g = 0; g < 10; ++g) EXPECT_EQ(two.version_of(g), want[g]) << g;
  AsyncSchedule four{4, 0, 10, 100};
  EXPECT_EQ(four.version_of(15), 11);  // 15 - 4 > 10
  EXPECT_EQ(four.version_of(12), 10);
  // Resumed at step 5 (a stop-signal save): checkpoints at 5, 8, 11, ... as StageRunner::run saves.
  AsyncSchedule resumed{2, 5, 3, 100};
  EXPECT_EQ(resumed.version_of(5), 5);
  EXPECT_EQ(resumed.version_of(6), 5);
  EXPECT_EQ(resumed.version_of(7), 5);
  EXPECT_EQ(resumed.version_of(8), 8);
  EXPECT_EQ(resumed.version_of(10), 8);
}

TEST(AsyncSchedule, NeededVersions) {
  AsyncSchedule two{2, 0, 3, 7};  // versions used: 0 (g 0-2), 3 (g 3-5), 6 (g 6)
  for (int64_t v = 0; v < 9; ++v) EXPECT_EQ(two.needed(v), v == 0 || v == 3 || v == 6) << v;
  AsyncSchedule one{1, 0, 0, 4};  // g 0..3 use 0, 0, 1, 2
  for (int64_t v = 0; v < 5; ++v) EXPECT_EQ(one.needed(v), v <= 2) << v;
}

struct Weights {
  int64_t version = -1;
};
struct Batch {
  int64_t sampled_by = -1;
};

// Runs `steps` trainer steps against a rollout thread: produce sleeps `rollout_ms`, the trainer
// `trainer_ms` per step. Checks every generation's version and returns the summed waits.
struct Waits {
  double trainer = 0, rollout = 0;
  size_t most_snapshots = 0;
};
Waits run_pipeline(AsyncSchedule sched, int rollout_ms, int trainer_ms) {
  std::atomic<int64_t> weights{sched.start};  // the trainer's version
  AsyncRollout<Batch, Weights> ar(
      sched, [] { return std::make_unique<Weights>(); }, [&](Weights& w) { w.version = weights.load(); },
      [&](int64_t, Weights& w) {
        const int64_t before = w.version;
        std::this_thread::sleep_for(std::chrono::milliseconds(rollout_ms));
        EXPECT_EQ(w.version, before) << "a snapshot changed while it was sampled from";
        auto b = std::make_unique<Batch>();
        b->sampled_by = w.version;
        return b;
      });
  Waits out;
  for (int64_t step = sched.start; step < sched.max_steps; ++step) {
    ar.publish(step);
    auto r = ar.take(step);
    EXPECT_EQ(r.generation, step);
    EXPECT_EQ(r.version, sched.version_of(step));
    EXPECT_EQ(r.value->sampled_by, r.version) << "generation " << step << " sampled by other weights than its version";
    EXPECT_LE(step - r.value->sampled_by, sched.max_staleness) << "staleness bound broken at step " << step;
    EXPECT_GE(step - r.value->sampled_by, 0);
    out.trainer += r.trainer_wait_s;
    out.rollout += r.rollout_wait_s;
    out.most_snapshots = std::max(out.most_snapshots, ar.snapshots_held());
    std::this_thread::sleep_for(std::chrono::milliseconds(trainer_ms));  // the update
    weights = step + 1;
  }
  return out;
}

TEST(AsyncRollout, SlowRolloutTrainerWaitsBoundHolds) {
  for (int64_t S : {1, 2, 3}) {
    AsyncSchedule sched{S, 0, 0, 12};
    auto w = run_pipeline(sched, /*rollout_ms=*/40, /*trainer_ms=*/0);
    // 12 generations of 40 ms each, the trainer almost idle: it waits for nearly all of them.
    EXPECT_GT(w.trainer, 12 * 0.040 * 0.6) << S;
    EXPECT_LT(w.rollout, w.trainer) << S;
    EXPECT_LE(w.most_snapshots, static_cast<size_t>(S + 1)) << S;
  }
}

TEST(AsyncRollout, SlowTrainerRolloutWaitsBoundHolds) {
  for (int64_t S : {1, 2}) {
    AsyncSchedule sched{S, 0, 0, 12};
    auto w = run_pipeline(sched, /*rollout_ms=*/0, /*trainer_ms=*/40);
    // The rollout cannot run more than S versions ahead: it waits about one update per generation
    // after the first S + 1, and the trainer hardly waits.
    EXPECT_GT(w.rollout, (12 - S - 1) * 0.040 * 0.6) << S;
    EXPECT_LT(w.trainer, w.rollout) << S;
    EXPECT_LE(w.most_snapshots, static_cast<size_t>(S + 1)) << S;
  }
}

TEST(AsyncRollout, CheckpointStepsAndResumeFollowTheSchedule) {
  run_pipeline(AsyncSchedule{2, 0, 4, 13}, 5, 5);
  run_pipeline(AsyncSchedule{2, 5, 4, 13}, 5, 5);  // resumed at 5
}

TEST(AsyncRollout, RolloutErrorReachesTheTrainer) {
  AsyncRollout<Batch, Weights> ar(
      AsyncSchedule{1, 0, 0, 5}, [] { return std::make_unique<Weights>(); }, [](Weights&) {},
      [](int64_t g, Weights&) -> std::unique_ptr<Batch> {
        if (g == 1) throw std::runtime_error("reward server down");
        return std::make_unique<Batch>();
      });
  ar.publish(0);
  EXPECT_NO_THROW(ar.take(0));
  ar.publish(1);
  EXPECT_THROW(ar.take(1), std::runtime_error);
}

TEST(AsyncRollout, DestructorStopsAWaitingRolloutThread) {
  // Generation 2 needs version 1, never published (a stop after step 0): destruction must not hang.
  AsyncRollout<Batch, Weights> ar(
      AsyncSchedule{1, 0, 0, 10}, [] { return std::make_unique<Weights>(); }, [](Weights&) {},
      [](int64_t, Weights&) { return std::make_unique<Batch>(); });
  ar.publish(0);
  ar.take(0);
}

}  // namespace
}  // namespace grpo::train
