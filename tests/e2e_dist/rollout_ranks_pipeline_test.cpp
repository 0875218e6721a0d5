// distributed.rollout_ranks: 1 through the real pipeline (issue 22), 2 CPU processes over Gloo:
// rank 1 only generates and scores the GRPO stage's rollouts, rank 0 only trains. The counts come
// from the engine calls each rank made (GrpoStage::roll_out), not from a flag: the trainer rank
// generated nothing, the rollout rank served one draw per GRPO step (ci-smoke: 3 steps, no dynamic
// sampling). Every command runs under `timeout` so that no test can hang.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace fs = std::filesystem;
using grpo::testing::read_text;
using grpo::testing::run_cmd;
using grpo::testing::TempDir;

const std::string kBin = GRPO_BIN;
const std::string kSmoke = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";

TEST(RolloutRanksPipeline, OneRolloutRankAndOneTrainerFinishCiSmoke) {
  TempDir t;
  const std::string out = (t.path / "run").string();
  auto r = run_cmd("timeout 300 " + kBin + " launch --nproc 2 -- train " + kSmoke + " stages.0.max_steps=10 trainer.output_dir=" +
                   out + " tokenizer.path=" + out + "/tokenizer.model distributed.rollout_ranks=1");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  for (const char* stage : {"stage-1-sft", "stage-2-grpo"}) {
    EXPECT_TRUE(fs::exists(out + "/" + stage + "/stage.json")) << stage;
    EXPECT_TRUE(fs::exists(out + "/" + stage + "/final/model.safetensors")) << stage;
  }
  const std::string trainer = read_text(out + "/train.log");
  const std::string rollout = read_text(out + "/train.rank-1.log");
  EXPECT_NE(trainer.find("rollout ranks: 0 generate calls on the trainer rank"), std::string::npos) << trainer;
  EXPECT_NE(rollout.find("rollout rank 1: served 3 draws (3 generate calls on this rank)"), std::string::npos) << rollout;
  EXPECT_NE(read_text(out + "/stage-2-grpo/stage.json").find("\"steps\": 3"), std::string::npos);
}

TEST(RolloutRanksPipeline, RefusesAsManyRolloutRanksAsProcesses) {
  TempDir t;
  const std::string out = (t.path / "run").string();
  auto r = run_cmd("timeout 300 " + kBin + " launch --nproc 2 -- train " + kSmoke + " stages.0.max_steps=2 trainer.output_dir=" +
                   out + " tokenizer.path=" + out + "/tokenizer.model distributed.rollout_ranks=2");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE((r.out + r.err).find("rollout"), std::string::npos) << r.out << r.err;
}

}  // namespace
