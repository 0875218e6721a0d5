// Multi-process data parallel on CPU over Gloo: the worker program (tests/dist/worker_main.cpp)
// trains a tiny LM; 2 processes must end where 1 process ends, through grpo launch and torchrun;
// a dead or hung rank must fail the others within the timeout; ranks that disagree on the config
// must refuse to start. Every command runs under `timeout` so that no test can hang.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/run_files.h"
#include "common/subprocess.h"
#include "grpo/dist/distributed.h"
#include "grpo/dist/grad_reducer.h"
#include "grpo/dist/launcher.h"
#include "grpo/util/error.h"

namespace grpo::dist {
namespace {

namespace fs = std::filesystem;
using testing::read_key_values;
using testing::read_values;
using testing::rel_diff;
using testing::run_cmd;
using testing::TempDir;

const std::string kWorker = std::string(GRPO_TEST_BIN_DIR) + "/dist_worker";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The reference: one process, the whole global batch (world size 1, no process group).
    ref_ = new TempDir();
    auto r = run_cmd("timeout 120 " + kWorker + " train --out " + (*ref_ / "one"));
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  static void TearDownTestSuite() { delete ref_; }

  // Two processes must reach the one-process parameters: float32 sums in a different order
  // (per-rank partial sums, then the all-reduce) differ by a few ulps per step; after 5 AdamW
  // steps the measured difference is 1e-8 (dapo) and 3e-8 (grpo) relative. 1e-5 is the agreed
  // bound; a local dapo normaliser moves parameters by 1.2e-2 (ALocalNormalizerIsCaught).
  static void expect_matches_reference(const std::string& prefix) {
    for (const char* loss : {".dapo.txt", ".grpo.txt"}) {
      auto one = read_values(*ref_ / ("one" + std::string(loss)));
      auto two = read_values(prefix + loss);
      ASSERT_EQ(one.size(), two.size()) << loss;
      ASSERT_GT(one.size(), 100u);
      EXPECT_LE(rel_diff(one, two), 1e-5) << loss;
    }
    auto m1 = read_key_values(*ref_ / "one.metrics.txt");
    auto m2 = read_key_values(prefix + ".metrics.txt");
    EXPECT_EQ(m2["world"], 2);
    EXPECT_EQ(m2["tokens"], m1["tokens"]);  // the metrics all-reduce (sum) of integer counts
    EXPECT_NEAR(m2["loss"], m1["loss"], 1e-4 * std::abs(m1["loss"]));
    EXPECT_EQ(m2["rank_min"], 0);
    EXPECT_EQ(m2["rank_max"], 1);
    EXPECT_EQ(m2["rank_mean"], 0.5);
  }
  static TempDir* ref_;
};
TempDir* DataParallel::ref_ = nullptr;

TEST_F(DataParallel, LossesDifferSoTheComparisonIsNotVacuous) {
  auto dapo = read_values(*ref_ / "one.dapo.txt");
  auto grpo = read_values(*ref_ / "one.grpo.txt");
  ASSERT_EQ(dapo.size(), grpo.size());
  EXPECT_GT(rel_diff(dapo, grpo), 1e-3);
}

TEST_F(DataParallel, TwoProcessesWithGrpoLaunchMatchOne) {
  TempDir t;
  auto r = run_cmd("timeout 120 " + std::string(GRPO_BIN) + " launch --nproc 2 --program " + kWorker +
                   " -- train --out " + (t / "two"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("[rank 0] rank 0: done"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 1] rank 1: done"), std::string::npos) << r.out;
  expect_matches_reference(t / "two");
}

TEST_F(DataParallel, ALocalNormalizerIsCaught) {
  // Each rank dividing the dapo loss by its own token count instead of the global one: the
  // comparison above must see it (so it is not passing by being too loose).
  TempDir t;
  auto r = run_cmd("timeout 120 " + std::string(GRPO_BIN) + " launch --nproc 2 --program " + kWorker +
                   " -- train --local-normalizer 1 --out " + (t / "bad"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto one = read_values(*ref_ / "one.dapo.txt");
  auto bad = read_values(t / "bad.dapo.txt");
  ASSERT_EQ(one.size(), bad.size());
  EXPECT_GT(rel_diff(one, bad), 1e-4);
}

TEST_F(DataParallel, TwoProcessesWithTorchrunNoPythonMatchOne) {
  TempDir t;
  const std::string torchrun = fs::path(GRPO_PYTHON).parent_path() / "torchrun";
  ASSERT_TRUE(fs::exists(torchrun)) << torchrun;
  auto r = run_cmd("timeout 120 " + torchrun + " --nproc-per-node 2 --nnodes 1 --master-addr 127.0.0.1 --master-port " +
                   std::to_string(pick_free_port()) + " --no-python " + kWorker + " train --out " + (t / "tr"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_matches_reference(t / "tr");
}

// Starts both ranks of a 2-process group directly (no supervisor that would stop the others),
// waits for rank 0 only, then kills rank 1. Returns rank 0's exit code, its stderr and seconds.
struct RankZero {
  int rc;
  std::string err;
  double seconds;
};
RankZero run_pair_and_wait_rank0(const TempDir& t, const std::string& args) {
  const std::string env = "WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                          std::to_string(pick_free_port());
  const std::string script = "env " + env + " RANK=1 LOCAL_RANK=1 " + kWorker + " " + args + " 2>" + (t / "r1.err") +
                             " & p1=$!; env " + env + " RANK=0 LOCAL_RANK=0 " + kWorker + " " + args + " 2>" +
                             (t / "r0.err") + "; rc=$?; kill -9 $p1 2>/dev/null; wait $p1 2>/dev/null; exit $rc";
  std::ofstream(t / "pair.sh") << script << "\n";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 120 bash " + (t / "pair.sh"));
  double s = seconds_since(t0);
  std::ifstream ef(t / "r0.err");
  std::string err((std::istreambuf_iterator<char>(ef)), {});
  return {r.rc, err, s};
}

TEST(DataParallelFailures, KilledRankFailsTheOthersWithAMessage) {
  TempDir t;
  auto r = run_pair_and_wait_rank0(t, "train --out " + (t / "x") + " --timeout 10 --die-rank 1 --die-step 2");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.rc, 124) << "rank 0 hung until the test's own timeout";
  EXPECT_NE(r.err.find("failed on rank 0 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a peer rank died, hung or timed out"), std::string::npos) << r.err;
  // Start-up (~2 s per process here) + the 10 s timeout bound, with slack for a loaded machine.
  EXPECT_LT(r.seconds, 40.0);
}

TEST(DataParallelFailures, HungRankTimesOutTheOthers) {
  TempDir t;
  auto r = run_pair_and_wait_rank0(t, "train --out " + (t / "x") + " --timeout 5 --hang-rank 1 --hang-step 2");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.rc, 124) << "rank 0 hung until the test's own timeout";
  EXPECT_NE(r.err.find("failed on rank 0 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("distributed.timeout_s=5"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 40.0);
}

TEST(DataParallelFailures, LaunchStopsTheOthersAndNamesTheFailedRank) {
  TempDir t;
  // Rank 0 sleeps (outside any collective) while rank 1 dies: only the launcher can stop rank 0.
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 120 " + std::string(GRPO_BIN) + " launch --nproc 2 --grace-s 3 --program " + kWorker +
                   " -- train --out " + (t / "x") + " --timeout 60 --die-rank 1 --die-step 1 --hang-rank 0 --hang-step 1");
  double s = seconds_since(t0);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("rank 1 (pid"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("was killed by SIGKILL; stopped the other 1 rank(s)"), std::string::npos) << r.err;
  EXPECT_LT(s, 30.0);  // far below the 60 s collective timeout: the launcher stopped rank 0
}

TEST(DataParallelFailures, ConfigMismatchIsRefusedAtStart) {
  const std::string launch = "timeout 120 " + std::string(GRPO_BIN) + " launch --nproc 2 --program " + kWorker + " -- ";
  auto same = run_cmd(launch + "fingerprint --config 'lr: 1'");
  EXPECT_EQ(same.rc, 0) << same.err;
  EXPECT_NE(same.out.find("[rank 1] rank 1: fingerprints agree"), std::string::npos) << same.out;
  auto diff = run_cmd(launch + "fingerprint --config 'lr: 1' --config-rank1 'lr: 2'");
  EXPECT_NE(diff.rc, 0);
  EXPECT_NE(diff.err.find("rank 1 differs from rank 0 in resolved config"), std::string::npos) << diff.err;
}

// Rank 0 alone in a group of 2 (rank 1 never starts): grpo's own rendezvous (no torchrun) must
// give up after distributed.timeout_s, not a built-in floor, naming the store's address and port,
// the ranks that arrived and the one that did not, and the config key.
TEST(DataParallelFailures, MissingRankIsNamedWithinTheTimeout) {
  TempDir t;
  const int port = pick_free_port();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 100 env WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                   std::to_string(port) + " " + kWorker + " fingerprint --timeout 5");
  const double s = seconds_since(t0);
  EXPECT_EQ(r.rc, 1) << r.err;
  const std::string where = "rendezvous at 127.0.0.1:" + std::to_string(port) + " (MASTER_ADDR:MASTER_PORT)";
  EXPECT_NE(r.err.find(where + " failed within distributed.timeout_s=5 s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 of 2 ranks arrived (rank 0 on "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing: rank 1 (node 1)"), std::string::npos) << r.err;
  // 5 s timeout + start-up (about 2 s here) + slack for the loaded machine; the old rendezvous
  // waited at least 120 s whatever timeout_s said.
  EXPECT_GE(s, 5.0);
  EXPECT_LT(s, 20.0);
}

// Rank 1 alone, pointed at a port nobody serves: the client retries the connection for
// distributed.timeout_s, then names the address and port it tried.
TEST(DataParallelFailures, UnreachableStoreIsNamedWithinTheTimeout) {
  const int port = pick_free_port();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 100 env WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 RANK=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                   std::to_string(port) + " " + kWorker + " fingerprint --timeout 5");
  const double s = seconds_since(t0);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("rank 1 of 2: cannot reach the rendezvous store at 127.0.0.1:" + std::to_string(port) +
                       " (MASTER_ADDR:MASTER_PORT) within distributed.timeout_s=5 s"),
            std::string::npos)
      << r.err;
  EXPECT_GE(s, 5.0);
  EXPECT_LT(s, 20.0);
}

// distributed.ddp_bucket_cap_mb and overlap_grad_reduce, as the trainer passes them
// (GradReducerOptions::from_config), over 2 Gloo processes. The expected bucket counts come from
// the model's tensor sizes (worker_main.cpp, buckets_selftest): 4352 bytes of float64 gradients
// in 5 tensors; the all-reduces are counted by c10d's own RecordFunction, not by the reducer.
TEST(GradientBuckets, CapAndOverlapAreTheCollectivesIssued) {
  auto r = run_cmd("timeout 120 " + std::string(GRPO_BIN) + " launch --nproc 2 --program " + kWorker + " -- buckets");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto line = [&](const std::string& head) {
    size_t p = r.out.find("case " + head + " ");
    EXPECT_NE(p, std::string::npos) << head << "\n" << r.out;
    return p == std::string::npos ? std::string() : r.out.substr(p, r.out.find('\n', p) - p);
  };
  // Cap = all 4352 bytes: one bucket, one all-reduce. Cap 2176: ceil(4352 / 2176) = 2 (fc2's
  // 2176 bytes, then fc1 + emb's 2176). Cap of one byte: one bucket per tensor. Every bucket's
  // all-reduce is launched by the hooks before backward() returns, and the first one (fc2's)
  // already when the gradient reaches the embedding's output, mid-backward.
  EXPECT_NE(line("cap_bytes=4352 overlap=1 micro=1").find("buckets=1 allreduces=1 mid_backward=0 after_backward=1 "),
            std::string::npos);
  EXPECT_NE(line("cap_bytes=2176 overlap=1 micro=1").find("buckets=2 allreduces=2 mid_backward=1 after_backward=2 "),
            std::string::npos);
  EXPECT_NE(line("cap_bytes=1 overlap=1 micro=1").find("buckets=5 allreduces=5 mid_backward=4 after_backward=5 "),
            std::string::npos);
  // overlap_grad_reduce false: nothing is launched during backward; synchronize() launches both.
  EXPECT_NE(line("cap_bytes=2176 overlap=0 micro=1").find("buckets=2 allreduces=2 mid_backward=0 after_backward=0 "),
            std::string::npos);
  // Gradient accumulation (2 micro-batches, set_sync(false) on the first): the first backward
  // communicates nothing, so the step still issues one all-reduce per bucket, not two.
  EXPECT_NE(line("cap_bytes=2176 overlap=1 micro=2").find("buckets=2 allreduces=2 mid_backward=1 after_backward=2 "),
            std::string::npos);
  EXPECT_NE(line("cap_bytes=2176 overlap=0 micro=2").find("buckets=2 allreduces=2 mid_backward=0 after_backward=0 "),
            std::string::npos);
  // Bucketing only regroups the elements: each element is still the sum of the same 2 float64
  // values (a + b == b + a exactly), divided by 2, so every case equals one all-reduce per tensor
  // bit for bit.
  size_t cases = 0;
  for (size_t p = r.out.find("case "); p != std::string::npos; p = r.out.find("case ", p + 1)) {
    ++cases;
    const std::string l = r.out.substr(p, r.out.find('\n', p) - p);
    EXPECT_EQ(l.substr(l.find("max_abs_diff=")), "max_abs_diff=0") << r.out;
  }
  EXPECT_EQ(cases, 6u) << r.out;
}

TEST(Launch, BadUsageIsAnInputError) {
  auto r = testing::run_grpo("launch --nproc 2 --program /nonexistent -- x");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("'/nonexistent' is not an executable file"), std::string::npos) << r.err;
  auto z = testing::run_grpo("launch --nproc 0 -- config docs");
  EXPECT_EQ(z.rc, 2) << z.err;
}

TEST(Launch, ForwardsOutputAndExitCodes) {
  // launch_workers writes to this process's stdout/stderr, so it runs through grpo here.
  auto r = testing::run_grpo("launch --nproc 3 --master-port 29999 --program /bin/sh -- -c 'echo out $RANK/$WORLD_SIZE/$LOCAL_RANK:$MASTER_PORT; echo err $MASTER_ADDR >&2'");
  EXPECT_EQ(r.rc, 0) << r.err;
  for (int k = 0; k < 3; ++k) {
    EXPECT_NE(r.out.find("[rank " + std::to_string(k) + "] out " + std::to_string(k) + "/3/" + std::to_string(k) +
                         ":29999"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("[rank " + std::to_string(k) + "] err 127.0.0.1"), std::string::npos) << r.err;
  }
  auto f = testing::run_grpo("launch --nproc 2 --program /bin/sh -- -c 'exit $((3 * RANK))'");
  EXPECT_EQ(f.rc, 1);
  EXPECT_NE(f.err.find("rank 1 (pid"), std::string::npos) << f.err;
  EXPECT_NE(f.err.find("exited with code 3"), std::string::npos) << f.err;
}

TEST(Launch, ForwardsSigterm) {
  // SIGTERM to the launcher once its workers run (they sleep 60 s): it must stop them and exit.
  TempDir t;
  const std::string script = std::string(GRPO_BIN) + " launch --nproc 2 --program /bin/sh -- -c 'echo started; exec sleep 60' >" +
                             (t / "out") + " 2>" + (t / "err") + " & p=$!; for i in $(seq 300); do grep -q started " + (t / "out") +
                             " && break; sleep 0.2; done; kill -TERM $p; wait $p";
  std::ofstream(t / "term.sh") << script << "\n";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 100 bash " + (t / "term.sh"));
  std::ifstream ef(t / "err");
  std::string err((std::istreambuf_iterator<char>(ef)), {});
  EXPECT_EQ(r.rc, 1) << err;  // grpo reports the interruption as an error
  EXPECT_NE(err.find("interrupted by SIGTERM; forwarded it to the 2 worker(s)"), std::string::npos) << err;
  EXPECT_LT(seconds_since(t0), 50.0);  // not the workers' 60 s
}

// In-process checks that need no second process.
TEST(Distributed, WorldSizeOneIsTheIdentity) {
  config::DistributedConfig cfg;
  auto d = Distributed::create(cfg, "cpu", LaunchEnv{});
  EXPECT_FALSE(d->has_group());
  auto t = torch::tensor({1.5, -2.0}, torch::kFloat64);
  d->all_reduce(t, ReduceOp::MEAN);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5, -2.0}, torch::kFloat64)));
  EXPECT_EQ(d->all_gather_string("x"), std::vector<std::string>{"x"});
  EXPECT_EQ(d->global_normalizer(7), 7);
  d->barrier();
}

TEST(Distributed, GlooGroupOfOneReducesAndGathers) {
  config::DistributedConfig cfg;
  cfg.timeout_s = 10;
  auto d = Distributed::create(cfg, "cpu", LaunchEnv{}, /*force_group=*/true);
  ASSERT_TRUE(d->has_group());
  EXPECT_EQ(d->backend(), config::DistBackend::GLOO);
  auto t = torch::tensor({3.0f, 4.0f});
  d->all_reduce(t, ReduceOp::SUM);
  EXPECT_TRUE(torch::equal(t, torch::tensor({3.0f, 4.0f})));
  auto m = d->all_reduce(std::map<std::string, double>{{"a", 1.0}, {"b", 2.0}}, ReduceOp::MAX);
  EXPECT_EQ(m["b"], 2.0);
  EXPECT_EQ(d->all_gather_string("hello"), std::vector<std::string>{"hello"});
  d->barrier();
  // Gradients through the bucketed path with hooks: world size 1 averages to themselves.
  auto w = torch::tensor({1.0f, 2.0f, 3.0f}, torch::requires_grad());
  auto v = torch::tensor({4.0f}, torch::requires_grad());
  GradientReducer red(d, {w, v}, {/*bucket_bytes=*/8, /*overlap=*/true});
  EXPECT_EQ(red.num_buckets(), 2);
  ((w * w).sum() + 3 * v.sum()).backward();
  red.synchronize();
  EXPECT_TRUE(torch::allclose(w.grad(), torch::tensor({2.0f, 4.0f, 6.0f})));
  EXPECT_TRUE(torch::allclose(v.grad(), torch::tensor({3.0f})));

  // A parameter without a gradient this step gets the (zero) average rather than being skipped,
  // so every rank issues the same collectives.
  w.mutable_grad() = torch::Tensor();
  v.mutable_grad() = torch::Tensor();
  (2 * v.sum()).backward();
  red.synchronize();
  EXPECT_TRUE(torch::equal(w.grad(), torch::zeros({3})));
  EXPECT_TRUE(torch::allclose(v.grad(), torch::tensor({2.0f})));

  // Two backward passes with sync on (gradient accumulation without set_sync(false)): the second
  // would all-reduce a bucket again; synchronize() reports it instead of averaging twice.
  ((w * w).sum() + v.sum()).backward();
  ((w * w).sum() + v.sum()).backward();
  EXPECT_THROW(red.synchronize(), InternalError);
  // With set_sync(false) on the first pass the same accumulation is fine.
  w.mutable_grad().zero_();
  v.mutable_grad().zero_();
  red.set_sync(false);
  ((w * w).sum() + v.sum()).backward();
  red.set_sync(true);
  ((w * w).sum() + v.sum()).backward();
  red.synchronize();
  EXPECT_TRUE(torch::allclose(w.grad(), torch::tensor({4.0f, 8.0f, 12.0f})));
  EXPECT_TRUE(torch::allclose(v.grad(), torch::tensor({2.0f})));
}

TEST(Distributed, BadBackendOrDeviceIsAnInputError) {
  config::DistributedConfig cfg;
  cfg.backend = config::DistBackend::NCCL;
  EXPECT_THROW(Distributed::create(cfg, "cpu", LaunchEnv{}), InputError);
  cfg.backend = config::DistBackend::AUTO;
  EXPECT_THROW(Distributed::create(cfg, "tpu", LaunchEnv{}), InputError);
}

TEST(Distributed, NcclGroupOfOneOnAGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the NCCL path is only compiled and linked here";
  auto r = run_cmd("timeout 120 " + kWorker + " nccl-selftest");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("nccl-selftest: ok"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace grpo::dist
