#pragma once
// The kill-and-resume pattern of the end-to-end resume tests: a run is SIGKILLed once a checkpoint
// is complete, resumed with --resume auto, and must end with the uninterrupted run's metrics.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"

namespace grpo::testing {

/// `base` for `steps` steps into `dir`, on the tokenizer and data files that a first (prep) run of
/// `base` wrote into `prep`; task.name=none so that nothing is regenerated.
inline std::string args_on_prepared_files(const std::string& base, const std::filesystem::path& prep,
                                          const std::filesystem::path& dir, int steps) {
  return base + " trainer.max_steps=" + std::to_string(steps) + " trainer.output_dir=" + dir.string() +
         " tokenizer.path=" + (prep / "tokenizer.model").string() +
         " data.train_file=" + (prep / "data" / "train.jsonl").string() +
         " data.eval_file=" + (prep / "data" / "eval.jsonl").string() + " task.name=none";
}

/// Starts `grpo cut_args` (output dir `cut`), SIGKILLs it once checkpoint `step` is complete (or
/// after `timeout`), then resumes it with --resume auto. Fatal failures when no checkpoint came
/// before the deadline, when the run ended before the kill (the test would prove nothing) or when
/// the resume fails: call under ASSERT_NO_FATAL_FAILURE.
inline void kill_at_checkpoint_and_resume(const std::string& cut_args, const std::filesystem::path& cut, int step,
                                          std::chrono::seconds timeout) {
  char name[32];
  std::snprintf(name, sizeof name, "checkpoint-%08d", step);
  const int status = run_grpo_until(cut_args, cut / "checkpoints" / name / "COMPLETE", timeout);
  ASSERT_TRUE(std::filesystem::exists(cut / "checkpoints" / name)) << "no checkpoint before the deadline";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before the kill: the test would prove nothing";
  ASSERT_FALSE(std::filesystem::exists(cut / "stage.json"));
  auto r = run_grpo(cut_args + " --resume auto");
  ASSERT_EQ(r.rc, 0) << r.err;
  // It continued from a checkpoint, not silently from step 0 (whose metrics would match as well).
  ASSERT_NE(r.err.find("resumed from " + (cut / "checkpoints").string() + "/checkpoint-"), std::string::npos) << r.err;
}

/// Every metric of one step's metrics.jsonl line `a` equals `b`'s, wall-clock times aside (time/*,
/// tokens_per_second*). `step` (1-based) only labels the failures.
inline void expect_same_metrics_but_time(const nlohmann::json& a, const nlohmann::json& b, size_t step) {
  for (auto& [k, v] : a.items()) {
    if (k.rfind("time/", 0) == 0 || k.rfind("tokens_per_second", 0) == 0) continue;
    EXPECT_EQ(v, b.value(k, nlohmann::json())) << "step " << step << " metric " << k;  // absent: null, a failure
  }
}

}  // namespace grpo::testing
