// Tool-integrated GRPO (rollout.tools, issue 21) through the grpo executable: a run of
// configs/ci-smoke.yaml with the python tool on, killed with SIGKILL once checkpoint 2 exists and
// resumed with --resume auto, ends with every step's metrics (wall-clock times aside) equal to the
// uninterrupted run's. A random-init policy never writes a ```python block, so the call syntax is
// set to letters it samples all the time ("e" opens a call, the next "t" closes it): the code between
// runs in the sandbox (mostly a SyntaxError, whose stderr tail is injected; measured: 0.9 calls per
// completion), and the steps train with
// injected tokens masked. rollout.tools.overlap: false makes the rollout bit-reproducible.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>

#include "common/resume_run.h"
#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;

TEST(ToolsResume, ResumeAfterSigkillIsExact) {
  auto prep = grpo::testing::scratch_dir("grpo_e2e_", "tools_prep");
  auto full = grpo::testing::scratch_dir("grpo_e2e_", "tools_full");
  auto cut = grpo::testing::scratch_dir("grpo_e2e_", "tools_cut");
  const std::string config = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";
  const std::string base = "train " + config +
                           " stages=[] checkpoint.save_steps=1 grpo.entropy_coef=0.01 'rollout.tools.enabled=[python]'"
                           " rollout.tools.overlap=false 'rollout.tools.call_start=[\"e\"]' 'rollout.tools.call_end=[\"t\"]'";
  auto r_prep = grpo::testing::run_grpo(base + " trainer.max_steps=1 trainer.output_dir=" + prep.string() +
                                        " tokenizer.path=" + (prep / "tokenizer.model").string());
  ASSERT_EQ(r_prep.rc, 0) << r_prep.err;
  auto args = [&](const sfs::path& dir) { return grpo::testing::args_on_prepared_files(base, prep, dir, 4); };
  auto r_full = grpo::testing::run_grpo(args(full));
  ASSERT_EQ(r_full.rc, 0) << r_full.err;
  const std::string cut_args = args(cut);
  ASSERT_NO_FATAL_FAILURE(grpo::testing::kill_at_checkpoint_and_resume(cut_args, cut, 2, std::chrono::seconds(180)));

  auto a = grpo::testing::read_jsonl(full / "metrics.jsonl");
  auto b = grpo::testing::read_jsonl(cut / "metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  double calls = 0, injected = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    calls += a[i].value("tools/calls_per_completion", 0.0);
    injected += a[i].value("tools/injected_tokens", 0.0);
    grpo::testing::expect_same_metrics_but_time(a[i], b[i], i + 1);
  }
  // The tool path ran: calls were made and their results injected (else this is the plain resume test).
  EXPECT_GT(calls, 0.0);
  EXPECT_GT(injected, 0.0);
  for (const auto& d : {prep, full, cut}) sfs::remove_all(d);
}

}  // namespace
