// Data parallel through the real training pipeline (grpo train: SFT then GRPO), 2 CPU processes
// over Gloo, issue 7's acceptance points:
//  - grpo launch and torchrun both finish configs/ci-smoke.yaml;
//  - 2 processes with per_device_train_batch_size B/2 end where 1 process with B ends (SFT and 5
//    GRPO steps, loss_type grpo and dapo), having sampled the same completions;
//  - a 2-process run whose launcher is SIGKILLed resumes (--resume auto) to the uninterrupted
//    run's metrics; a copy of it resumes on 1 process (resharded, issue 16);
//  - a rank killed mid-run makes the other exit non-zero with a message, within the timeout.
// The parity runs use tests/e2e_dist/dist-parity.yaml (why it differs from ci-smoke is written
// there). Every command runs under `timeout` so that no test can hang.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/subprocess.h"
#include "grpo/dist/launcher.h"
#include "grpo/util/safetensors.h"

namespace {

namespace fs = std::filesystem;
using grpo::testing::run_cmd;

const std::string kBin = GRPO_BIN;
const std::string kParity = std::string(GRPO_SOURCE_DIR) + "/tests/e2e_dist/dist-parity.yaml";
const std::string kSmoke = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";
// The smoke pipeline as configured, with a shorter SFT stage (the suite's time budget).
const std::string kSmokeArgs = " stages.0.max_steps=10 trainer.output_dir=";

std::string torchrun() { return (fs::path(GRPO_PYTHON).parent_path() / "torchrun").string(); }

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("grpo_e2e_dist_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every float32 value of a safetensors file, tensors in file order (names checked equal below).
std::vector<std::pair<std::string, std::vector<float>>> read_weights(const std::string& path) {
  grpo::safetensors::File f(path);
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.dtype, "F32") << path << " " << t.name;
    const auto* p = static_cast<const float*>(f.data(t));
    out.emplace_back(t.name, std::vector<float>(p, p + t.nbytes / sizeof(float)));
  }
  return out;
}

// max |a - b| / max |a| over all parameters (as tests/dist/data_parallel_test.cpp), float64.
double weights_rel_diff(const std::string& a_path, const std::string& b_path) {
  auto a = read_weights(a_path), b = read_weights(b_path);
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.size(), b[i].second.size()) << a[i].first;
    if (a[i].second.size() != b[i].second.size()) return INFINITY;
    for (size_t k = 0; k < a[i].second.size(); ++k) {
      num = std::max(num, std::abs(double(a[i].second[k]) - double(b[i].second[k])));
      den = std::max(den, std::abs(double(a[i].second[k])));
    }
  }
  return num / den;
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Overrides that make a run read the data and tokenizer another run prepared (the same inputs for
// every run of a comparison, and no tokenizer training per run).
std::string shared_inputs(const std::string& dir) {
  return " tokenizer.path=" + dir + "/tokenizer.model data.train_file=" + dir + "/data/train.jsonl data.eval_file=" + dir +
         "/data/eval.jsonl";
}

std::string launch2(const std::string& args) { return "timeout 120 " + kBin + " launch --nproc 2 -- train " + args; }

std::string torchrun2(const std::string& args) {
  return "timeout 120 " + torchrun() + " --nproc-per-node 2 --nnodes 1 --master-addr 127.0.0.1 --master-port " +
         std::to_string(grpo::dist::pick_free_port()) + " --no-python " + kBin + " train " + args;
}

void expect_pipeline_finished(const std::string& out) {
  for (const char* stage : {"stage-1-sft", "stage-2-grpo"}) {
    EXPECT_TRUE(fs::exists(out + "/" + stage + "/stage.json")) << out << " " << stage;
    EXPECT_TRUE(fs::exists(out + "/" + stage + "/final/model.safetensors")) << out << " " << stage;
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Both launchers finish the smoke pipeline.

TEST(DistPipeline, GrpoLaunchFinishesCiSmoke) {
  TempDir t;
  const std::string out = t / "run";
  auto r = run_cmd(launch2(kSmoke + kSmokeArgs + out + " tokenizer.path=" + out + "/tokenizer.model"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  expect_pipeline_finished(out);
  // Rank 0 alone prints the table and writes train.log; rank 1 logs to its own file.
  EXPECT_NE(r.out.find("[rank 0] | after stage"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("[rank 1] | after stage"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(out + "/train.log"));
  EXPECT_NE(read_text(out + "/train.rank-1.log").find("[rank 1]"), std::string::npos);
  EXPECT_EQ(read_text(out + "/train.log").find("[rank 1]"), std::string::npos);
}

TEST(DistPipeline, TorchrunFinishesCiSmoke) {
  ASSERT_TRUE(fs::exists(torchrun())) << torchrun();
  TempDir t;
  const std::string out = t / "run";
  auto r = run_cmd(torchrun2(kSmoke + kSmokeArgs + out + " tokenizer.path=" + out + "/tokenizer.model"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  expect_pipeline_finished(out);
}

// ---------------------------------------------------------------------------------------------
// 2. Parity: 2 processes x B/2 = 1 process x B.

class DistParity : public ::testing::Test {
 protected:
  // One process, the whole global batch (per_device_train_batch_size 8, 2 accumulation steps: 4
  // prompts x 4 completions per GRPO step), run on first use (CTest runs each test in its own
  // process). The grpo run writes the task data and trains the tokenizer every other run reads.
  static void SetUpTestSuite() { tmp_ = new TempDir(); }
  static std::string ref(const std::string& loss) {
    const std::string out = *tmp_ / ("one-" + loss);
    if (!fs::exists(out + "/stage-2-grpo/stage.json")) {
      if (loss != "grpo") ref("grpo");
      std::string args = kParity + " trainer.output_dir=" + out + " grpo.loss_type=" + loss +
                         (loss == "grpo" ? " tokenizer.path=" + out + "/tokenizer.model" : inputs());
      auto r = run_cmd("timeout 120 " + kBin + " train " + args);
      EXPECT_EQ(r.rc, 0) << r.err;
    }
    return out;
  }
  static void TearDownTestSuite() { delete tmp_; }
  static std::string inputs() { return shared_inputs(*tmp_ / "one-grpo"); }
  // The two-process arguments: half the per-device batch, the same global batch.
  static std::string two_args(const std::string& loss, const std::string& out) {
    ref(loss);  // the reference first: it prepares the shared inputs
    return kParity + " trainer.output_dir=" + out + " grpo.loss_type=" + loss + " trainer.per_device_train_batch_size=4" +
           inputs();
  }

  // Float32 sums in another order (per-rank micro-batches of 4 completions instead of 8, then the
  // all-reduce) move the parameters by a few ulps per step; measured after SFT + 5 GRPO steps:
  // 1.6e-6 (grpo) and 1.5e-6 (dapo) relative, the same size as one process splitting its batch
  // into 4 micro-batches of 4 instead of 2 of 8 (1.8e-6). 1e-5 is issue 7's bound; bnpo, whose
  // normaliser is per rank by definition, moves them by 8e-3 (BnpoNormalisesPerRank...).
  static void expect_matches_reference(const std::string& loss, const std::string& two) {
    for (const char* stage : {"stage-1-sft", "stage-2-grpo"})
      EXPECT_LE(weights_rel_diff(ref(loss) + "/" + stage + "/final/model.safetensors",
                                 two + "/" + stage + "/final/model.safetensors"),
                1e-5)
          << loss << " " << stage;
    // The same completions: the per-step means of the rewards and completion lengths, and their
    // extremes, agree (they are computed from integer lengths and a few reward levels; the mean
    // over ranks of per-rank means over equal shares equals the global mean up to rounding).
    auto one = read_metrics(ref(loss) + "/stage-2-grpo/metrics.jsonl");
    auto two_m = read_metrics(two + "/stage-2-grpo/metrics.jsonl");
    ASSERT_EQ(one.size(), 5u);
    ASSERT_EQ(two_m.size(), one.size());
    double length_spread = 0;
    for (size_t s = 0; s < one.size(); ++s) {
      for (const char* k : {"reward", "rewards/length/mean", "completions/length/mean", "completions/length/min",
                            "completions/length/max", "completions/truncated_ratio", "tokens_per_generation"})
        EXPECT_NEAR(two_m[s].at(k).get<double>(), one[s].at(k).get<double>(), 1e-9) << loss << " step " << s + 1 << " " << k;
      EXPECT_NEAR(two_m[s].at("loss").get<double>(), one[s].at("loss").get<double>(), 1e-5) << loss << " step " << s + 1;
      length_spread += one[s].at("completions/length/max").get<double>() - one[s].at("completions/length/min").get<double>();
    }
    // Not vacuous: completions of different lengths, so the length reward gives advantages.
    EXPECT_GT(length_spread, 0);
  }
  static TempDir* tmp_;
};
TempDir* DistParity::tmp_ = nullptr;

TEST_F(DistParity, LossTypesDifferSoTheComparisonIsNotVacuous) {
  EXPECT_GT(weights_rel_diff(ref("grpo") + "/stage-2-grpo/final/model.safetensors",
                             ref("dapo") + "/stage-2-grpo/final/model.safetensors"),
            1e-4);
}

// The trainable tensors of a checkpoint (the MoE routers' correction biases are buffers), read
// from the weights file rather than from the reducer: their count and their float32 bytes.
std::pair<int, int64_t> trainable_tensors(const std::string& safetensors) {
  grpo::safetensors::File f(safetensors);
  int n = 0;
  int64_t bytes = 0;
  for (const auto& t : f.tensors()) {
    if (t.name.find("e_score_correction_bias") != std::string::npos) continue;
    ++n;
    bytes += static_cast<int64_t>(t.nbytes);
  }
  return {n, bytes};
}

// Both stages' "gradient all-reduce: ..." lines from rank 0's train.log.
std::vector<std::string> reducer_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::ifstream in(out + "/train.log");
  for (std::string l; std::getline(in, l);)
    if (l.find("gradient all-reduce: ") != std::string::npos) lines.push_back(l.substr(l.find("gradient all-reduce: ")));
  return lines;
}

TEST_F(DistParity, GrpoLossTwoProcessesWithGrpoLaunchMatchOne) {
  TempDir t;
  auto r = run_cmd(launch2(two_args("grpo", t / "two")));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_matches_reference("grpo", t / "two");
  // Default distributed.ddp_bucket_cap_mb (25) holds the whole 29 k-parameter model: one bucket of
  // all its bytes, launched from the backward hooks (overlap_grad_reduce default true).
  auto [n, bytes] = trainable_tensors(t / "two/stage-2-grpo/final/model.safetensors");
  auto lines = reducer_lines(t / "two");
  ASSERT_EQ(lines.size(), 2u);  // SFT and GRPO
  for (const auto& l : lines)
    EXPECT_EQ(l, "gradient all-reduce: 1 bucket(s) for " + std::to_string(n) + " parameter tensors (" +
                     std::to_string(bytes) + " bytes, largest bucket " + std::to_string(bytes) +
                     " bytes; distributed.ddp_bucket_cap_mb = 25), launched during backward as each bucket's "
                     "gradients are ready");
}

TEST_F(DistParity, DapoLossTwoProcessesWithTorchrunMatchOne) {
  // With a bucket cap below any tensor's size (one bucket per tensor) and the all-reduces after
  // backward: the trainer must build its reducer from these keys. The weights still match one
  // process: with 2 ranks each element is a + b whatever the grouping.
  TempDir t;
  auto r = run_cmd(torchrun2(two_args("dapo", t / "two") +
                             " distributed.ddp_bucket_cap_mb=1e-9 distributed.overlap_grad_reduce=false"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_matches_reference("dapo", t / "two");
  auto [n, bytes] = trainable_tensors(t / "two/stage-2-grpo/final/model.safetensors");
  auto lines = reducer_lines(t / "two");
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) {
    EXPECT_EQ(l.rfind("gradient all-reduce: " + std::to_string(n) + " bucket(s) for " + std::to_string(n) +
                          " parameter tensors (" + std::to_string(bytes) + " bytes, ",
                      0),
              0u)
        << l;
    EXPECT_NE(l.find("launched after backward (distributed.overlap_grad_reduce = false)"), std::string::npos) << l;
  }
}

TEST_F(DistParity, BnpoNormalisesPerRankSoTwoProcessesDiffer) {
  // bnpo divides by the tokens of this rank's batch (TRL's definition; dapo is the global one):
  // with ranks holding different token counts, 2 processes differ from 1 by design, and the
  // comparison above sees it.
  TempDir t;
  auto r = run_cmd(launch2(two_args("bnpo", t / "two")));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_GT(weights_rel_diff(ref("bnpo") + "/stage-2-grpo/final/model.safetensors",
                             t / "two/stage-2-grpo/final/model.safetensors"),
            1e-4);
}

// ---------------------------------------------------------------------------------------------
// 3. Resume of a killed 2-process run.

// Processes whose command line mentions `needle` (the run's unique output directory).
int count_processes_mentioning(const std::string& needle) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string cmdline = read_text((e.path() / "cmdline").string());
    if (cmdline.find(needle) != std::string::npos) ++n;
  }
  return n;
}

bool is_metric_compared(const std::string& key) {
  return key.rfind("time/", 0) != 0 && key.rfind("tokens_per_second", 0) != 0;
}

TEST(DistResume, KilledLauncherResumesToTheUninterruptedMetrics) {
  TempDir t;
  const std::string full = t / "full", cut = t / "cut";
  auto args = [&](const std::string& out, const std::string& inputs) {
    return kParity + " trainer.output_dir=" + out + " trainer.per_device_train_batch_size=4 stages.1.max_steps=10" + inputs;
  };
  auto r = run_cmd(launch2(args(full, " tokenizer.path=" + full + "/tokenizer.model")));
  ASSERT_EQ(r.rc, 0) << r.err;

  // SIGKILL the launcher once the GRPO stage has written checkpoint 2 (of 10 steps). Its workers
  // get SIGTERM (PR_SET_PDEATHSIG) and lose their output pipes; wait until they are gone.
  const std::string ck = cut + "/stage-2-grpo/checkpoints/checkpoint-00000002";
  const std::string script = kBin + " launch --nproc 2 -- train " + args(cut, shared_inputs(full)) + " >" + (t / "cut.out") +
                             " 2>" + (t / "cut.err") + " & p=$!; for i in $(seq 9000); do [ -d " + ck +
                             " ] && break; sleep 0.01; done; kill -9 $p; wait $p; exit 0";
  std::ofstream(t / "cut.sh") << script << "\n";
  r = run_cmd("timeout 150 bash " + (t / "cut.sh"));
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_TRUE(fs::exists(ck)) << read_text(t / "cut.err");
  auto t0 = std::chrono::steady_clock::now();
  while (count_processes_mentioning(cut) > 0 && seconds_since(t0) < 60)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(count_processes_mentioning(cut), 0) << "the workers outlived their launcher by a minute";
  ASSERT_FALSE(fs::exists(cut + "/stage-2-grpo/stage.json")) << "the run finished before the kill: nothing to resume";

  // A different world size reshards (issue 16; docs/distributed.md, "Checkpoints and resharding"):
  // 1 process with twice the per-device batch continues a copy of the run from its newest
  // checkpoint for one more step, saying so.
  const std::string one_dir = t / "one";
  fs::copy(cut, one_dir, fs::copy_options::recursive);
  const std::string latest = read_text(one_dir + "/stage-2-grpo/checkpoints/latest");  // "checkpoint-0000000N\n"
  ASSERT_GT(latest.size(), 12u) << latest;
  const int saved_step = std::stoi(latest.substr(11));
  auto one = run_cmd("timeout 120 " + kBin + " train " + args(one_dir, shared_inputs(full)) +
                     " trainer.per_device_train_batch_size=8 stages.1.max_steps=" + std::to_string(saved_step + 1) +
                     " --resume auto");
  EXPECT_EQ(one.rc, 0) << one.err;
  EXPECT_NE(one.err.find("resumed from " + one_dir + "/stage-2-grpo/checkpoints/checkpoint-"), std::string::npos) << one.err;
  EXPECT_NE(one.err.find("was written by 2 process(es), this run has 1: resharded"), std::string::npos) << one.err;

  r = run_cmd(launch2(args(cut, shared_inputs(full)) + " --resume auto"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + cut + "/stage-2-grpo/checkpoints/checkpoint-"), std::string::npos) << r.err;
  for (const char* stage : {"stage-1-sft", "stage-2-grpo"}) {
    auto a = read_metrics(full + "/" + stage + "/metrics.jsonl");
    auto b = read_metrics(cut + "/" + stage + "/metrics.jsonl");
    ASSERT_EQ(a.size(), b.size()) << stage;
    for (size_t s = 0; s < a.size(); ++s)
      for (const auto& [k, v] : a[s].items()) {
        if (!is_metric_compared(k)) continue;
        ASSERT_TRUE(b[s].contains(k)) << stage << " step " << s + 1 << " " << k;
        EXPECT_EQ(b[s][k], v) << stage << " step " << s + 1 << " " << k;
      }
  }
  EXPECT_EQ(weights_rel_diff(full + "/stage-2-grpo/final/model.safetensors", cut + "/stage-2-grpo/final/model.safetensors"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// 4. A rank killed mid-run.

TEST(DistFailures, KilledRankFailsTheOtherWithAMessageWithinTheTimeout) {
  // Both ranks started directly (no launcher that would stop rank 0 for us); rank 1 is SIGKILLed
  // once the GRPO stage (30 steps) has written its first checkpoint.
  TempDir t;
  const std::string out = t / "run";
  const std::string ck = out + "/stage-2-grpo/checkpoints/checkpoint-00000001";
  const std::string env = "WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                          std::to_string(grpo::dist::pick_free_port());
  const std::string cmd = kBin + " train " + kParity + " trainer.output_dir=" + out + " tokenizer.path=" + out +
                          "/tokenizer.model trainer.per_device_train_batch_size=4 stages.1.max_steps=30 "
                          "distributed.timeout_s=10";
  const std::string script = "env " + env + " RANK=1 LOCAL_RANK=1 " + cmd + " 2>" + (t / "r1.err") + " & p1=$!; env " + env +
                             " RANK=0 LOCAL_RANK=0 " + cmd + " 2>" + (t / "r0.err") + " & p0=$!; for i in $(seq 6000); do [ -d " +
                             ck + " ] && break; sleep 0.01; done; kill -9 $p1; echo killed; wait $p0; rc=$?; wait $p1; exit $rc";
  std::ofstream(t / "pair.sh") << script << "\n";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 120 bash " + (t / "pair.sh"));
  double s = seconds_since(t0);
  const std::string err = read_text(t / "r0.err");
  ASSERT_TRUE(fs::exists(ck)) << err;
  EXPECT_NE(r.rc, 0) << err;
  EXPECT_NE(r.rc, 124) << "rank 0 hung until the test's own timeout";
  EXPECT_FALSE(fs::exists(out + "/stage-2-grpo/stage.json")) << "rank 0 finished the stage alone";
  EXPECT_NE(err.find("failed on rank 0 of 2"), std::string::npos) << err;
  EXPECT_NE(err.find("a peer rank died, hung or timed out"), std::string::npos) << err;
  // Start-up and the run so far (a few s) + the 10 s timeout bound, with slack for a loaded machine.
  EXPECT_LT(s, 60.0);
}

}  // namespace
