// grpo.rollout_correction through the real pipeline (configs/ci-smoke.yaml, SFT then 5 GRPO steps):
//  - sync (grpo.async_rollout off): the correction's weights are exactly 1, so the default (mis) run
//    and a run with rollout_correction none log bit-identical losses and gradient norms, no
//    rollout_correction/* metric, and a behaviour-vs-old mismatch below 1e-5 per token (float32);
//  - async (one step off): every generation after the first is stale, its completions are
//    corrected (rollout_correction/rows) and the loss differs from rollout_correction none from the
//    first stale step on, while the first (fresh) step is identical: the switch changes the update.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::read_jsonl;
using grpo::testing::run_grpo;
using nlohmann::json;

const std::string kConfig = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";
constexpr int kSteps = 5;
constexpr double kRowsPerStep = 16;  // per_device_train_batch_size 8 * gradient_accumulation_steps 2

// The GRPO stage's metrics of one ci-smoke run with the given overrides.
std::vector<json> run(const std::string& name, const std::string& overrides) {
  const auto dir = grpo::testing::scratch_dir("grpo_e2e_rc_", name);
  auto r = run_grpo("train " + kConfig + " stages.1.max_steps=" + std::to_string(kSteps) +
                    " trainer.output_dir=" + dir.string() + " tokenizer.path=" + (dir / "tokenizer.model").string() +
                    " " + overrides);
  EXPECT_EQ(r.rc, 0) << r.err << r.out;
  auto m = read_jsonl(dir / "stage-2-grpo" / "metrics.jsonl");
  sfs::remove_all(dir);
  EXPECT_EQ(m.size(), static_cast<size_t>(kSteps)) << name;
  return m;
}

bool has_correction_metrics(const json& step) {
  for (const auto& [k, v] : step.items())
    if (k.rfind("rollout_correction/", 0) == 0) return true;
  return false;
}

TEST(RolloutCorrectionE2e, SyncRunsAreUnchangedAndTheMismatchIsRounding) {
  auto mis = run("sync_mis", "");  // the default: grpo.rollout_correction mis
  auto none = run("sync_none", "grpo.rollout_correction=none");
  ASSERT_EQ(mis.size(), none.size());
  for (size_t i = 0; i < mis.size(); ++i) {
    EXPECT_EQ(mis[i]["loss"], none[i]["loss"]) << "step " << i + 1;
    EXPECT_EQ(mis[i]["grad_norm"], none[i]["grad_norm"]) << "step " << i + 1;
    EXPECT_FALSE(has_correction_metrics(mis[i])) << mis[i].dump();
    EXPECT_LT(mis[i]["logprob_mismatch/mean_abs"].get<double>(), 1e-5) << "step " << i + 1;
    EXPECT_TRUE(mis[i].contains("logprob_mismatch/probs_diff_max"));
  }
}

TEST(RolloutCorrectionE2e, AsyncStaleStepsAreCorrectedAndTheUpdateChanges) {
  auto mis = run("async_mis", "grpo.async_rollout=on");
  auto none = run("async_none", "grpo.async_rollout=on grpo.rollout_correction=none");
  ASSERT_EQ(mis.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(none.size(), static_cast<size_t>(kSteps));
  // Step 1 trains on the generation of the starting weights: not stale, nothing corrected.
  EXPECT_FALSE(has_correction_metrics(mis[0]));
  EXPECT_EQ(mis[0]["loss"], none[0]["loss"]);
  EXPECT_EQ(mis[0]["grad_norm"], none[0]["grad_norm"]);
  for (size_t i = 1; i < mis.size(); ++i) {
    ASSERT_TRUE(mis[i].contains("rollout_correction/rows")) << "step " << i + 1 << ": " << mis[i].dump();
    EXPECT_EQ(mis[i]["rollout_correction/rows"].get<double>(), kRowsPerStep);
    EXPECT_GT(mis[i]["logprob_mismatch/mean_abs"].get<double>(), 1e-4) << "a stale generation: the policy moved";
    const double wmax = mis[i]["rollout_correction/weight_max"].get<double>();
    EXPECT_LE(wmax, 3.0) << "mis keeps no weight above clip_max";
    EXPECT_FALSE(has_correction_metrics(none[i]));
  }
  // Step 2 samples the same completions in both runs (from the same step-1 weights); its update differs.
  EXPECT_EQ(mis[1]["reward"], none[1]["reward"]);
  EXPECT_NE(mis[1]["loss"], none[1]["loss"]);
  EXPECT_NE(mis[1]["grad_norm"], none[1]["grad_norm"]);
}

}  // namespace
