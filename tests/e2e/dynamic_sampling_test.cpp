// DAPO dynamic sampling (grpo.dynamic_sampling) on the CI smoke task: the batch trained on has no
// zero-variance group when the data has enough prompts, the cap on extra draws is respected, the
// first draw is the one a run without dynamic sampling trains on, and resume stays exact.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::run_grpo;

const std::string kConfig = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";
constexpr int kGroups = 4;  // B = per_device_train_batch_size 8 * gradient_accumulation_steps 2 / num_generations 4

sfs::path scratch(const std::string& name) { return grpo::testing::scratch_dir("grpo_e2e_ds_", name); }
using grpo::testing::read_jsonl;

// One SFT stage (the ci-smoke recipe) whose weights every GRPO run here starts from: from random
// weights every reward is 0 and no group has variance.
class DynamicSampling : public ::testing::Test {
 protected:
  static sfs::path sft_dir;
  static void SetUpTestSuite() {
    sft_dir = scratch("sft");
    auto r = run_grpo("train " + kConfig + " trainer.output_dir=" + sft_dir.string() +
                      " tokenizer.path=" + (sft_dir / "tokenizer.model").string() +
                      " 'stages=[{kind: sft, max_steps: 100, learning_rate: 1.0e-2}]'");
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
  }
  static void TearDownTestSuite() { sfs::remove_all(sft_dir); }
  static sfs::path final_weights() {
    for (auto p : {sft_dir / "final", sft_dir / "stage-1-sft" / "final"})
      if (sfs::exists(p)) return p;
    return sft_dir / "final";
  }
  // A GRPO run of `steps` steps from the SFT weights into `dir`, with extra overrides.
  static grpo::testing::CmdResult grpo_run(const sfs::path& dir, int steps, const std::string& extra) {
    return run_grpo("train " + kConfig + " stages=[] trainer.max_steps=" + std::to_string(steps) +
                    " model.path=" + final_weights().string() + " trainer.output_dir=" + dir.string() +
                    " tokenizer.path=" + (sft_dir / "tokenizer.model").string() +
                    " data.train_file=" + (sft_dir / "data" / "train.jsonl").string() +
                    " data.eval_file=" + (sft_dir / "data" / "eval.jsonl").string() + " task.name=none" + extra);
  }
};
sfs::path DynamicSampling::sft_dir;

TEST_F(DynamicSampling, TrainsOnlyOnGroupsWithRewardVariance) {
  auto d = scratch("filter");
  auto r = grpo_run(d, 4, " grpo.dynamic_sampling=true grpo.max_resample_rounds=30");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto m = read_jsonl(d / "metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  double dropped = 0;
  for (const auto& s : m) {
    // frac_reward_zero_std is computed by compute_advantages over the batch trained on.
    EXPECT_EQ(s["frac_reward_zero_std"].get<double>(), 0.0) << s.dump();
    EXPECT_EQ(s["dynamic_sampling/groups_trained"].get<double>(), kGroups) << s.dump();
    EXPECT_LE(s["dynamic_sampling/extra_draws"].get<double>(), 30) << s.dump();
    dropped += s["dynamic_sampling/groups_dropped"].get<double>();
  }
  // Without dynamic sampling this task has 50-75% zero-variance groups per step: if nothing was
  // dropped the test proved nothing.
  EXPECT_GT(dropped, 0);
  sfs::remove_all(d);
}

TEST_F(DynamicSampling, CapOnExtraDrawsIsRespected) {
  auto plain = scratch("plain");
  ASSERT_EQ(grpo_run(plain, 1, "").rc, 0);
  const double zero_frac = read_jsonl(plain / "metrics.jsonl").at(0)["frac_reward_zero_std"].get<double>();
  ASSERT_GT(zero_frac, 0.0) << "the first batch has no zero-variance group: nothing to drop";
  ASSERT_LT(zero_frac, 1.0) << "the first batch has only zero-variance groups";

  // max_resample_rounds = 0: one draw, the plain run's; its zero-variance groups are dropped and
  // the step trains on the rest.
  auto cap0 = scratch("cap0");
  auto r = grpo_run(cap0, 1, " grpo.dynamic_sampling=true grpo.max_resample_rounds=0");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto s = read_jsonl(cap0 / "metrics.jsonl").at(0);
  EXPECT_EQ(s["dynamic_sampling/extra_draws"].get<double>(), 0) << s.dump();
  EXPECT_DOUBLE_EQ(s["dynamic_sampling/groups_dropped"].get<double>(), zero_frac * kGroups) << s.dump();
  EXPECT_DOUBLE_EQ(s["dynamic_sampling/groups_trained"].get<double>(), (1 - zero_frac) * kGroups) << s.dump();
  EXPECT_EQ(s["frac_reward_zero_std"].get<double>(), 0.0) << s.dump();
  EXPECT_NE(r.err.find("dynamic sampling: step 1:"), std::string::npos) << r.err;

  // max_resample_rounds = 1: at most one extra draw per step.
  auto cap1 = scratch("cap1");
  ASSERT_EQ(grpo_run(cap1, 3, " grpo.dynamic_sampling=true grpo.max_resample_rounds=1").rc, 0);
  for (const auto& st : read_jsonl(cap1 / "metrics.jsonl")) {
    EXPECT_LE(st["dynamic_sampling/extra_draws"].get<double>(), 1) << st.dump();
    EXPECT_LE(st["dynamic_sampling/groups_trained"].get<double>(), kGroups) << st.dump();
  }
  for (const auto& p : {plain, cap0, cap1}) sfs::remove_all(p);
}

// Resume from a checkpoint (the loader position after the extra draws, the generation count)
// gives the uninterrupted run's metrics.
TEST_F(DynamicSampling, ResumeIsExact) {
  auto full = scratch("resume_full");
  auto cut = scratch("resume_cut");
  const std::string ds = " grpo.dynamic_sampling=true grpo.max_resample_rounds=30 checkpoint.save_steps=2";
  ASSERT_EQ(grpo_run(full, 4, ds).rc, 0);
  sfs::create_directories(cut / "checkpoints");
  sfs::copy(full / "checkpoints" / "checkpoint-00000002", cut / "checkpoints" / "checkpoint-00000002",
            sfs::copy_options::recursive);
  auto r = grpo_run(cut, 4, ds + " --resume auto");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  auto a = read_jsonl(full / "metrics.jsonl");
  auto b = read_jsonl(cut / "metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 2; i < a.size(); ++i)
    for (auto& [k, v] : a[i].items()) {
      if (k.rfind("time/", 0) == 0 || k.rfind("tokens_per_second", 0) == 0) continue;
      EXPECT_EQ(v, b[i][k]) << "step " << i + 1 << " metric " << k;
    }
  sfs::remove_all(full);
  sfs::remove_all(cut);
}

}  // namespace
