// Sharded data parallel (distributed.sharding) on CPU over Gloo, through the worker program
// tests/dist/shard_worker_main.cpp (a tiny grpo Transformer, dense or MoE, AdamW with weight
// decay and clipping, 2 micro-batches): 2 and 3 processes with `full` and `optimizer` end where
// 1 process with `none` ends; each knob changes what c10d is asked to do (collectives counted by
// c10d's RecordFunction records in the worker, not by the sharder); checkpoint pieces round-trip.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace fs = std::filesystem;
using grpo::testing::read_key_values;
using grpo::testing::read_values;
using grpo::testing::rel_diff;
using grpo::testing::run_cmd;
using grpo::testing::TempDir;

const std::string kWorker = std::string(GRPO_TEST_BIN_DIR) + "/dist_shard_worker";

std::string str_cat(const char* a, int n) { return std::string(a) + std::to_string(n); }

// Runs the worker on `nproc` processes (1: directly); returns the output prefix.
std::string run_worker(const TempDir& t, const std::string& name, int nproc, const std::string& args) {
  const std::string out = t / name;
  std::string cmd = "timeout 120 ";
  if (nproc > 1) cmd += std::string(GRPO_BIN) + " launch --nproc " + std::to_string(nproc) + " --program " + kWorker + " -- ";
  else cmd += kWorker + " ";
  auto r = run_cmd(cmd + args + " --out " + out);
  EXPECT_EQ(r.rc, 0) << name << "\n" << r.out << r.err;
  return out;
}

// The references (sharding none on 1 process, and DDP on 3) against full and optimizer on 2 and 3
// processes. Float32 sums in another order move the weights by a few ulps per step; the bound is
// the data-parallel tests' (issue 7) 1e-5. The MoE model split 3 ways is 6.2e-5 from one process
// with DDP as well (no sharding; measured), so 3 processes are held to 1e-5 against DDP on 3 (full
// vs DDP measured 2.3e-6) and to 1e-4 against one. Not vacuous: one step less moves the weights by
// far more (checked below).
void expect_parity(const std::string& moe) {
  TempDir t;
  const std::string common = " --moe " + moe + " --steps 3 --micro 2";
  auto ref = read_values(run_worker(t, "ref", 1, "--mode none" + common) + ".weights.txt");
  auto ddp3 = read_values(run_worker(t, "ddp3", 3, "--mode none" + common) + ".weights.txt");
  ASSERT_GT(ref.size(), 1000u);
  for (const char* mode : {"full", "optimizer"})
    for (int n : {2, 3}) {
      auto got = read_values(run_worker(t, str_cat(mode, n), n, std::string("--mode ") + mode + common) + ".weights.txt");
      EXPECT_LE(rel_diff(ref, got), n == 2 ? 1e-5 : 1e-4) << mode << " on " << n << " processes, moe " << moe;
      if (n == 3) EXPECT_LE(rel_diff(ddp3, got), 1e-5) << mode << " on 3 processes vs DDP on 3, moe " << moe;
    }
  auto shorter = read_values(run_worker(t, "short", 1, "--mode none --moe " + moe + " --steps 2 --micro 2") + ".weights.txt");
  EXPECT_GT(rel_diff(ref, shorter), 1e-3);
}

}  // namespace

TEST(Sharding, FullAndOptimizerMatchOneProcessDense) { expect_parity("0"); }
TEST(Sharding, FullAndOptimizerMatchOneProcessMoe) { expect_parity("1"); }

TEST(Sharding, ReshardAfterForwardFalseGathersEachBlockOncePerMicroBatch) {
  // 3 blocks, 2 micro-batches, 1 step: reshard_after_forward true gathers each block for its
  // forward and again for its backward (12 block gathers), false only for its forward (6); the
  // embedding unit is gathered once after the step either way.
  TempDir t;
  auto on = read_key_values(run_worker(t, "on", 2, "--mode full --steps 1 --micro 2 --reshard 1") + ".rank-0.txt");
  auto off = read_key_values(run_worker(t, "off", 2, "--mode full --steps 1 --micro 2 --reshard 0") + ".rank-0.txt");
  EXPECT_EQ(on["gathers"], 12 + 1);
  EXPECT_EQ(off["gathers"], 6 + 1);
  // Keeping the gathered blocks from forward to backward holds more bytes (measured storages).
  EXPECT_GT(off["peak_bytes"], on["peak_bytes"]);
}

TEST(Sharding, ForwardsWithoutGradGatherEachBlockOnceUntilTheUpdate) {
  // 4 forwards without grad (a rollout's decode steps) before the training micro-batches: each of
  // the 3 blocks is gathered once for all of them (kept whole until the training forward frees
  // it), not 4 times; then the 13 gathers of a training step as above.
  TempDir t;
  auto c = read_key_values(run_worker(t, "gen", 2, "--mode full --steps 1 --micro 2 --generate 4") + ".rank-0.txt");
  EXPECT_EQ(c["gathers"], 3 + 13);
}

TEST(Sharding, Bf16GatherRoundsTheBlockWeights) {
  // trainer.bf16 with full: the blocks are all-gathered as bf16 copies of the float32 masters, so
  // the forward sees bf16-rounded weights (relative rounding up to 2^-9): the trained weights move
  // away from the float32-gather run by far more than the parity bound (measured 2.0e-2 after 3
  // AdamW steps at lr 1e-2, which moves any weight whose gradient sign flips by lr), yet stay close.
  TempDir t;
  auto f32 = read_values(run_worker(t, "f32", 2, "--mode full --steps 3") + ".weights.txt");
  auto b16 = read_values(run_worker(t, "b16", 2, "--mode full --steps 3 --bf16 1") + ".weights.txt");
  EXPECT_GT(rel_diff(f32, b16), 1e-5);
  EXPECT_LT(rel_diff(f32, b16), 5e-2);
}

TEST(Sharding, PrefetchLaunchesTheNextGatherBeforeComputing) {
  // gg_pairs: two all-gathers launched back to back by the main thread with no matmul between (the
  // worker's record of the launches among the main thread's matmuls, in program order; Gloo runs
  // them later on its own thread, which is a race and not counted). Without prefetch a block's
  // gather is launched when the block starts and waited for, so its matmuls separate two launches:
  // 0. With forward prefetch block 1's gather is launched right after block 0's, before block 0's
  // first matmul (block 2's then follows block 0's compute): one pair per forward, 4 forwards in
  // 2 steps x 2 micro-batches; backward prefetch likewise per backward. Every launch is one of the
  // collectives c10d itself records (3 blocks x 2 micro-batches x 2 with resharding, + the
  // embedding unit after each step: 13 per step).
  TempDir t;
  auto run = [&](const std::string& f, const std::string& b) {
    return read_key_values(run_worker(t, "p" + f + b, 2, "--mode full --steps 2 --micro 2 --fprefetch " + f + " --bprefetch " + b) +
                           ".rank-0.txt");
  };
  for (const char* fb : {"00", "10", "01", "11"}) {
    auto kv = run(std::string(1, fb[0]), std::string(1, fb[1]));
    const int expected = 4 * (fb[0] == '1') + 4 * (fb[1] == '1');
    EXPECT_EQ(kv["gg_pairs"], expected) << "forward_prefetch " << fb[0] << " backward_prefetch " << fb[1];
    EXPECT_EQ(kv["gathers"], 2 * 13) << fb;
    EXPECT_EQ(kv["launches"], kv["gathers"]) << fb;
  }
}

TEST(Sharding, BucketCapSetsTheNumberOfReduceScatters) {
  // optimizer mode: one unit under the default 25 MiB (all-reduces per step: its reduce-scatter and
  // the global norm); a cap of ~100 bytes puts almost every parameter tensor in its own unit.
  TempDir t;
  auto big = read_key_values(run_worker(t, "big", 2, "--mode optimizer --steps 2 --micro 2") + ".rank-0.txt");
  auto small = read_key_values(run_worker(t, "small", 2, "--mode optimizer --steps 2 --micro 2 --bucket-mb 0.0001") + ".rank-0.txt");
  EXPECT_EQ(big["allreduces"], 2 * 2);
  EXPECT_GT(small["allreduces"], 2 * 20);
}

TEST(Sharding, CheckpointPiecesRoundTrip) {
  // Every rank's pieces (weights and both AdamW moments) assembled into whole tensors and loaded
  // into a differently initialised model's sharder give back the same slices, on 2 and 3 ranks.
  TempDir t;
  for (const char* mode : {"full", "optimizer"})
    for (int n : {2, 3}) {
      auto out = run_worker(t, str_cat(mode, n), n, std::string("--mode ") + mode + " --moe 1 --steps 2 --ckpt 1");
      for (int r = 0; r < n; ++r)
        EXPECT_EQ(read_key_values(out + ".rank-" + std::to_string(r) + ".txt")["ckpt_equal"], 1) << mode << " " << n << " rank " << r;
    }
}

TEST(Sharding, ReferenceModelIsShardedLikeThePolicy) {
  // sharding full with a reference model (grpo.beta > 0), a MoE model of 8 blocks: each rank keeps
  // the non-block weights whole and 1/N of every decoder block (plus at most N-1 padding elements
  // per block), counted by LibTorch's CPU allocator against a replicated reference built the same
  // way (measured on 3 ranks: exactly the expected bytes); its log-probs equal the replicated
  // reference's (same weights, same ops: measured 0), and after ref_model_sync_steps' sync the
  // trained policy's.
  TempDir t;
  constexpr int kBlocks = 8;
  for (int n : {2, 3}) {
    auto out = run_worker(t, str_cat("ref", n), n, "--mode full --moe 1 --steps 2 --ref 1 --layers 8");
    for (int r = 0; r < n; ++r) {
      auto kv = read_key_values(out + ".rank-" + std::to_string(r) + ".txt");
      const double full = kv["ref_full_bytes"], blocks = kv["ref_block_bytes"];
      ASSERT_GT(blocks, 0.5 * full) << "the tiny model's blocks must dominate for the count to mean anything";
      const double expected = full - blocks + blocks / n;
      EXPECT_GE(kv["ref_bytes"], expected) << n << " ranks, rank " << r;
      EXPECT_LE(kv["ref_bytes"], expected + kBlocks * 4 * (n - 1)) << n << " ranks, rank " << r;
      // A forward gathers (at least one block) but never the whole model: beyond the activations,
      // which the replicated forward allocates as well, it holds the running block, the prefetched
      // one and Gloo's staging buffer of an all-gather (ProcessGroupGloo gathers into a flat
      // temporary and copies out), and up to two more staging buffers Gloo's threads have not
      // freed yet: at most 5 of the 8 blocks (measured 3 to 4.05), never all 8.
      const double extra = kv["ref_fwd_extra"] - kv["ref_full_fwd_extra"];
      EXPECT_GE(extra, blocks / kBlocks) << n << " ranks, rank " << r;
      EXPECT_LE(extra, blocks * 5 / kBlocks) << n << " ranks, rank " << r;
      EXPECT_LE(kv["ref_logp_diff"], 1e-6) << n << " ranks, rank " << r;
      EXPECT_LE(kv["ref_sync_diff"], 1e-6) << n << " ranks, rank " << r;
      EXPECT_GE(kv["ref_logp_diff"], 0);
      EXPECT_GE(kv["ref_sync_diff"], 0);
    }
  }
}

TEST(Sharding, RolloutCopyIsFreedBeforeTheUpdateAndBf16UnderBf16) {
  // sharding full, 3 ranks, 8 blocks, forwards without grad (a rollout) before the training micro-batches.
  // Counted by LibTorch's CPU allocator in the last step: those forwards leave one whole copy of
  // the blocks resident (kept for the rest of the rollout), in float32 (4 bytes per element) and,
  // with the bf16 all-gather under bf16 autocast (trainer.bf16), in bf16 (2 bytes); and when the
  // optimizer step starts the copy is gone: the resident bytes then are those of the same run
  // without the rollout forwards.
  TempDir t;
  auto kv = [&](const std::string& name, const std::string& args) {
    return read_key_values(run_worker(t, name, 3, "--mode full --moe 1 --steps 2 --micro 2 --layers 8 " + args) + ".rank-0.txt");
  };
  auto none = kv("gen0", "--generate 0 --bf16 1 --autocast 1");
  auto f32 = kv("f32", "--generate 3");
  auto b16 = kv("b16", "--generate 3 --bf16 1 --autocast 1");
  auto b16_plain = kv("b16plain", "--generate 3 --bf16 1 --autocast 0");
  const double n = f32["block_numel"];
  ASSERT_GT(n, 1000);
  const double pad = 8 * 2 * 4;  // at most 2 padding elements per block unit, 8 blocks
  EXPECT_GE(f32["gen_copy_bytes"], 4 * n);
  EXPECT_LE(f32["gen_copy_bytes"], 4 * n + pad);
  EXPECT_GE(b16["gen_copy_bytes"], 2 * n);
  EXPECT_LE(b16["gen_copy_bytes"], 2 * n + pad);
  // bf16 gather but a forward outside autocast: the weights must be float32 for it.
  EXPECT_GE(b16_plain["gen_copy_bytes"], 4 * n);
  EXPECT_EQ(none["gen_copy_bytes"], 0);
  // Freed before the update: nothing of the copy left when the step starts (all threads' bytes,
  // after Gloo's threads have let go of finished collectives: shard_worker_main.cpp).
  EXPECT_EQ(f32["pre_update_bytes"], kv("f32gen0", "--generate 0")["pre_update_bytes"]);
  EXPECT_EQ(b16["pre_update_bytes"], none["pre_update_bytes"]);
}
