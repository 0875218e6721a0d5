// grpo.async_rollout: on through the grpo executable: a GRPO run of configs/ci-smoke.yaml with
// max_staleness 2 and a checkpoint every 3 steps, killed with SIGKILL once checkpoint 3 exists
// and resumed with --resume auto, ends with every step's metrics (times and waits aside) and the
// final weights equal to the uninterrupted run's: the in-flight generations are regenerated from
// the checkpoint's weights, seed and data position (the pipeline drains at checkpoint steps). The
// staleness of each step is the schedule's, max(g - 2, last checkpoint step) for generation g:
// 0, 1, 2, 0, 1, 2, 0. From a random-init policy (no SFT stage), 7 steps: about 15 s.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;

std::string file_bytes(const sfs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool timing_key(const std::string& k) {
  return k.rfind("time/", 0) == 0 || k.rfind("tokens_per_second", 0) == 0 || k == "async/trainer_wait_s" ||
         k == "async/rollout_wait_s" || k == "async/snapshots";
}

TEST(AsyncRolloutResume, ResumeAfterSigkillIsExact) {
  auto prep = grpo::testing::scratch_dir("grpo_e2e_", "async_prep");
  auto full = grpo::testing::scratch_dir("grpo_e2e_", "async_full");
  auto cut = grpo::testing::scratch_dir("grpo_e2e_", "async_cut");
  const std::string config = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";
  // Random init earns equal rewards: the entropy bonus gives every step a gradient, so the weights
  // move and a stale generation differs from a fresh one.
  const std::string base = "train " + config + " stages=[] grpo.entropy_coef=0.01";
  auto r_prep = grpo::testing::run_grpo(base + " trainer.max_steps=1 trainer.output_dir=" + prep.string() +
                                        " tokenizer.path=" + (prep / "tokenizer.model").string());
  ASSERT_EQ(r_prep.rc, 0) << r_prep.err;
  auto args = [&](const sfs::path& dir) {
    return base + " grpo.async_rollout=on grpo.max_staleness=2 checkpoint.save_steps=3 trainer.max_steps=7" +
           " trainer.output_dir=" + dir.string() + " tokenizer.path=" + (prep / "tokenizer.model").string() +
           " data.train_file=" + (prep / "data" / "train.jsonl").string() +
           " data.eval_file=" + (prep / "data" / "eval.jsonl").string() + " task.name=none";
  };
  auto r_full = grpo::testing::run_grpo(args(full));
  ASSERT_EQ(r_full.rc, 0) << r_full.err;
  const std::string cut_args = args(cut);
  const int status =
      grpo::testing::run_grpo_until(cut_args, cut / "checkpoints" / "checkpoint-00000003" / "COMPLETE", std::chrono::seconds(180));
  ASSERT_TRUE(sfs::exists(cut / "checkpoints" / "checkpoint-00000003")) << "no checkpoint before the deadline";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before the kill: the test would prove nothing";
  ASSERT_FALSE(sfs::exists(cut / "checkpoints" / "checkpoint-00000006")) << "killed too late to test the resume";
  auto r = grpo::testing::run_grpo(cut_args + " --resume auto");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;

  auto a = grpo::testing::read_jsonl(full / "metrics.jsonl");
  auto b = grpo::testing::read_jsonl(cut / "metrics.jsonl");
  ASSERT_EQ(a.size(), 7u);
  ASSERT_EQ(b.size(), 7u);
  const double staleness[] = {0, 1, 2, 0, 1, 2, 0};
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_GT(a[i].value("grad_norm", 0.0), 0.0) << "a step without gradient proves little: " << a[i].dump();
    EXPECT_EQ(a[i].value("async/staleness", -1.0), staleness[i]) << "step " << i + 1;
    const std::string hist = "async/completions_at_staleness_" + std::to_string(int(staleness[i]));
    EXPECT_EQ(a[i].value(hist, 0.0), 16.0) << "step " << i + 1;  // 8 x 2 completions per step
    for (auto& [k, v] : a[i].items()) {
      if (timing_key(k)) continue;
      EXPECT_EQ(v, b[i][k]) << "step " << i + 1 << " metric " << k;
    }
  }
  ASSERT_TRUE(sfs::exists(full / "final" / "model.safetensors"));
  EXPECT_TRUE(file_bytes(full / "final" / "model.safetensors") == file_bytes(cut / "final" / "model.safetensors"))
      << "final weights differ";
  for (const auto& d : {prep, full, cut}) sfs::remove_all(d);
}

}  // namespace
