// The CI smoke training (configs/ci-smoke.yaml) through the grpo executable, as a user runs it:
// SFT then GRPO; GRPO with every loss_type; exact resume after a SIGKILL; a truncated checkpoint
// is detected. Failures here mean the training path regressed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::run_grpo;

const std::string kConfig = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";

sfs::path scratch(const std::string& name) { return grpo::testing::scratch_dir("grpo_e2e_", name); }
using grpo::testing::read_jsonl;

// Shared by the tests: one SFT + GRPO pipeline run whose SFT weights the loss_type runs start from.
// Run once per process for every suite below (the parametrised resume suite derives from this
// one), removed when the process's tests end.
class CiSmoke : public ::testing::Test {
 public:
  static sfs::path run_dir;
  static bool run_ok;

 protected:
  static void SetUpTestSuite() {
    if (!run_dir.empty()) return;
    run_dir = scratch("pipeline");
    auto r = run_grpo("train " + kConfig + " trainer.output_dir=" + run_dir.string() +
                      " tokenizer.path=" + (run_dir / "tokenizer.model").string());
    run_ok = r.rc == 0;
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
  }
  void SetUp() override { ASSERT_TRUE(run_ok) << "the shared SFT + GRPO pipeline run failed"; }
  static std::string common_overrides(const sfs::path& dir) {
    return " trainer.output_dir=" + dir.string() + " tokenizer.path=" + (run_dir / "tokenizer.model").string() +
           " data.train_file=" + (run_dir / "data" / "train.jsonl").string() +
           " data.eval_file=" + (run_dir / "data" / "eval.jsonl").string() + " task.name=none";
  }
};
sfs::path CiSmoke::run_dir;
bool CiSmoke::run_ok = false;

struct RemoveSharedRun : ::testing::Environment {
  void TearDown() override {
    if (!CiSmoke::run_dir.empty()) sfs::remove_all(CiSmoke::run_dir);
  }
};
[[maybe_unused]] auto* const kRemoveSharedRun = ::testing::AddGlobalTestEnvironment(new RemoveSharedRun);

TEST_F(CiSmoke, PipelineWritesEverything) {
  for (const char* stage : {"stage-1-sft", "stage-2-grpo"}) {
    auto d = run_dir / stage;
    EXPECT_TRUE(sfs::exists(d / "stage.json")) << d;
    EXPECT_TRUE(sfs::exists(d / "final" / "model.safetensors")) << d;
    auto metrics = read_jsonl(d / "metrics.jsonl");
    ASSERT_FALSE(metrics.empty()) << d;
    for (const auto& m : metrics) {
      ASSERT_TRUE(m.contains("loss")) << m.dump();
      ASSERT_TRUE(m["loss"].is_number()) << "non-finite loss: " << m.dump();
    }
    EXPECT_TRUE(sfs::exists(d / "checkpoints" / "latest")) << d;
    EXPECT_FALSE(sfs::is_empty(d / "tensorboard")) << d;
  }
  auto grpo = read_jsonl(run_dir / "stage-2-grpo" / "metrics.jsonl");
  EXPECT_EQ(grpo.size(), 3u);
  for (const char* key : {"reward", "rewards/format/mean", "rewards/code/mean", "accuracy", "clip_ratio/region",
                          "completions/length/mean", "grad_norm", "learning_rate", "time/rollout"})
    EXPECT_TRUE(grpo.back().contains(key)) << key << " missing in " << grpo.back().dump();
  // The code reward really ran the completions' programs in the sandbox, and most ran cleanly
  // (SFT taught the ```python format; the values printed are mostly still wrong).
  for (const auto& m : grpo) {
    EXPECT_GT(m.value("rewards/code/programs_run", 0.0), 0.0) << m.dump();
    EXPECT_GT(m.value("rewards/code/status/ok", 0.0), 0.0) << m.dump();
    EXPECT_EQ(m.value("rewards/code/sandbox_errors", 0.0), 0.0) << m.dump();
    double code = m["rewards/code/mean"].get<double>();
    EXPECT_TRUE(code >= 0.0 && code <= 1.0) << m.dump();
  }
  EXPECT_TRUE(sfs::exists(run_dir / "config.yaml"));
}

TEST_F(CiSmoke, EveryLossTypeTrains) {
  for (const char* lt : {"grpo", "bnpo", "dapo", "dr_grpo"}) {
    auto d = scratch(std::string("loss_") + lt);
    auto r = run_grpo("train " + kConfig + common_overrides(d) + " stages=[] trainer.max_steps=2 grpo.beta=0.04" +
                      " grpo.loss_type=" + lt + " model.path=" + (run_dir / "stage-1-sft" / "final").string());
    ASSERT_EQ(r.rc, 0) << lt << ": " << r.err;
    auto m = read_jsonl(d / "metrics.jsonl");
    ASSERT_EQ(m.size(), 2u) << lt;
    EXPECT_TRUE(m[1]["loss"].is_number()) << lt << ": " << m[1].dump();
    EXPECT_TRUE(m[1]["kl"].is_number()) << lt << ": " << m[1].dump();
    sfs::remove_all(d);
  }
}

// Bit-exact resume: kill -9 after a checkpoint, resume, and every later step's metrics (other
// than wall-clock times) must equal the uninterrupted run's. Once with the plain ops and once with
// kernels.fused_ops (the grpo:: ops on CPU): both runs of each must name their kernels in the log
// and in the run directory's kernels.txt.
struct KernelsCase {
  const char* name;
  const char* overrides;  // appended to the command line
  const char* line;       // the start of the kernels line the runs must log
};
class CiSmokeResume : public CiSmoke, public ::testing::WithParamInterface<KernelsCase> {};

TEST_P(CiSmokeResume, ResumeAfterSigkillIsExact) {
  const KernelsCase& kc = GetParam();
  auto full = scratch(std::string("resume_full_") + kc.name);
  auto cut = scratch(std::string("resume_cut_") + kc.name);
  std::string base = "train " + kConfig + " stages=[] trainer.max_steps=8 checkpoint.save_steps=1" +
                     " model.path=" + (run_dir / "stage-1-sft" / "final").string() + kc.overrides;
  auto r_full = run_grpo(base + common_overrides(full));
  ASSERT_EQ(r_full.rc, 0) << r_full.err;
  EXPECT_NE(r_full.err.find(kc.line), std::string::npos) << "the log must name the kernels: " << r_full.err;

  // Start the same run, kill it once checkpoint 2 exists.
  const int status = grpo::testing::run_grpo_until(base + common_overrides(cut), cut / "checkpoints" / "checkpoint-00000002" / "COMPLETE", std::chrono::seconds(120));
  ASSERT_TRUE(sfs::exists(cut / "checkpoints" / "checkpoint-00000002")) << "no checkpoint before the deadline";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before the kill: the test would prove nothing";
  ASSERT_FALSE(sfs::exists(cut / "stage.json"));
  auto r = run_grpo(base + common_overrides(cut) + " --resume auto");
  ASSERT_EQ(r.rc, 0) << r.err;
  // It continued from a checkpoint (at least 2), not silently from step 0 (which would also match).
  EXPECT_NE(r.err.find("resumed from " + (cut / "checkpoints").string() + "/checkpoint-"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(kc.line), std::string::npos) << "the resumed run's log must name the kernels: " << r.err;

  auto a = read_jsonl(full / "metrics.jsonl");
  auto b = read_jsonl(cut / "metrics.jsonl");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < a.size(); ++i) {
    for (auto& [k, v] : a[i].items()) {
      if (k.rfind("time/", 0) == 0 || k.rfind("tokens_per_second", 0) == 0) continue;
      EXPECT_EQ(v, b[i][k]) << "step " << i + 1 << " metric " << k;
    }
  }
  for (const auto& d : {full, cut}) {
    std::ifstream in(d / "kernels.txt");
    std::string line;
    ASSERT_TRUE(std::getline(in, line)) << "no kernels.txt in " << d;
    EXPECT_EQ(line.rfind(kc.line, 0), 0u) << line;
  }
  sfs::remove_all(full);
  sfs::remove_all(cut);
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CiSmokeResume,
    ::testing::Values(KernelsCase{"plain", "", "kernels: rms_norm=plain swiglu=plain rope=plain"},
                      KernelsCase{"fused_ops", " kernels.fused_ops=true",
                                  "kernels: rms_norm=grpo::add_rms_norm+rms_norm(cpu) swiglu=grpo::swiglu(cpu) "
                                  "rope=grpo::rope(cpu)"}),
    [](const ::testing::TestParamInfo<KernelsCase>& i) { return std::string(i.param.name); });

// A SIGKILL in the middle of writing checkpoint 3 (fault injected after its weights are written):
// --resume auto resumes from checkpoint 2 and the run ends with the uninterrupted run's metrics.
TEST_F(CiSmoke, SigkillDuringSaveResumesFromThePreviousCheckpoint) {
  auto full = scratch("midsave_full");
  auto cut = scratch("midsave_cut");
  std::string base = "train " + kConfig + " stages=[] trainer.max_steps=4 checkpoint.save_steps=1" +
                     " model.path=" + (run_dir / "stage-1-sft" / "final").string();
  ASSERT_EQ(run_grpo(base + common_overrides(full)).rc, 0);
  // e2e_kill_in_save (kill_in_save_main.cpp): `grpo train` with a save hook that SIGKILLs in step 3's save.
  auto killed = grpo::testing::run_cmd(std::string(GRPO_TEST_BIN_DIR) + "/e2e_kill_in_save 3 " + base + common_overrides(cut));
  ASSERT_NE(killed.rc, 0) << "the fault injection did not fire";
  EXPECT_TRUE(sfs::exists(cut / "checkpoints" / "checkpoint-00000002" / "COMPLETE"));
  EXPECT_FALSE(sfs::exists(cut / "checkpoints" / "checkpoint-00000003"));
  auto r = run_grpo(base + common_overrides(cut) + " --resume auto");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + (cut / "checkpoints" / "checkpoint-00000002").string()), std::string::npos) << r.err;
  auto a = read_jsonl(full / "metrics.jsonl");
  auto b = read_jsonl(cut / "metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i)
    for (auto& [k, v] : a[i].items())
      if (k.rfind("time/", 0) != 0 && k.rfind("tokens_per_second", 0) != 0)
        EXPECT_EQ(v, b[i][k]) << "step " << i + 1 << " metric " << k;
  sfs::remove_all(full);
  sfs::remove_all(cut);
}

TEST_F(CiSmoke, TruncatedCheckpointIsDetected) {
  auto d = scratch("corrupt");
  std::string base = "train " + kConfig + " stages=[] trainer.max_steps=2 checkpoint.save_steps=1" +
                     " model.path=" + (run_dir / "stage-1-sft" / "final").string() + common_overrides(d);
  ASSERT_EQ(run_grpo(base).rc, 0);
  // Make it a run that crashed after its last checkpoint: a finished stage is not resumed.
  sfs::remove(d / "stage.json");
  sfs::remove_all(d / "final");
  auto ck = d / "checkpoints" / "checkpoint-00000002";
  ASSERT_TRUE(sfs::exists(ck / "model.safetensors"));
  sfs::resize_file(ck / "model.safetensors", sfs::file_size(ck / "model.safetensors") / 2);
  auto r = run_grpo(base + " trainer.max_steps=3 --resume " + ck.string());
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_NE(r.err.find("checkpoint-00000002"), std::string::npos) << r.err;
  // auto skips the corrupt one and falls back to checkpoint 1.
  auto r2 = run_grpo(base + " trainer.max_steps=3 --resume auto");
  EXPECT_EQ(r2.rc, 0) << r2.err;
  EXPECT_NE(r2.err.find("checkpoint-00000001"), std::string::npos) << r2.err;
  sfs::remove_all(d);
}

}  // namespace
