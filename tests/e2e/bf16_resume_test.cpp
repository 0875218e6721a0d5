// trainer.bf16 on the CPU through the grpo executable: a GRPO run of configs/ci-smoke.yaml in bf16,
// killed with SIGKILL once checkpoint 2 exists and resumed with --resume auto, ends with every
// step's metrics (wall-clock times aside) equal to the uninterrupted bf16 run's. The bf16 weight
// casts are redone from the restored float32 master weights, so nothing bf16 is saved; this checks
// that nothing bf16 needs to be. From a random-init policy (no SFT stage), 4 steps: about 10 s.
// (The float32 variants, after SFT, are in ci_smoke_test.cpp.)
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/resume_run.h"
#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;

TEST(Bf16CpuResume, ResumeAfterSigkillIsExact) {
  auto prep = grpo::testing::scratch_dir("grpo_e2e_", "bf16_prep");
  auto full = grpo::testing::scratch_dir("grpo_e2e_", "bf16_full");
  auto cut = grpo::testing::scratch_dir("grpo_e2e_", "bf16_cut");
  const std::string config = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";
  // A random-init policy earns equal rewards (zero advantages): the entropy bonus gives every step
  // a gradient, so the bf16 backward and the optimizer state are part of what must resume exactly.
  const std::string base =
      "train " + config + " stages=[] checkpoint.save_steps=1 trainer.bf16=true grpo.entropy_coef=0.01";
  // The task's tokenizer and data files, made once (one step); both runs below read them.
  auto r_prep = grpo::testing::run_grpo(base + " trainer.max_steps=1 trainer.output_dir=" + prep.string() +
                                        " tokenizer.path=" + (prep / "tokenizer.model").string());
  ASSERT_EQ(r_prep.rc, 0) << r_prep.err;
  EXPECT_NE(r_prep.err.find("trainer.bf16: bf16 autocast on the CPU, products on "), std::string::npos) << r_prep.err;
  auto args = [&](const sfs::path& dir) { return grpo::testing::args_on_prepared_files(base, prep, dir, 4); };
  ASSERT_EQ(grpo::testing::run_grpo(args(full)).rc, 0);
  const std::string cut_args = args(cut);
  ASSERT_NO_FATAL_FAILURE(grpo::testing::kill_at_checkpoint_and_resume(cut_args, cut, 2, std::chrono::seconds(120)));

  auto a = grpo::testing::read_jsonl(full / "metrics.jsonl");
  auto b = grpo::testing::read_jsonl(cut / "metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_GT(a[i].value("grad_norm", 0.0), 0.0) << "a step without gradient proves little: " << a[i].dump();
    grpo::testing::expect_same_metrics_but_time(a[i], b[i], i + 1);
  }
  for (const auto& d : {prep, full, cut}) sfs::remove_all(d);
}

}  // namespace
