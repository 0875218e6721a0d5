// What a new user hits on the first day (issue 19), through the grpo executable: extending a
// finished run with --resume auto, a corrupt --resume PATH of a finished run, a run whose data has
// no answer field and whose rewards do not read one, the end-of-run message without a held-out set,
// and the warning when every completion of a step is truncated. Tiny runs from one short SFT.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::read_jsonl;
using grpo::testing::run_grpo;

const std::string kConfig = std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml";

sfs::path scratch(const std::string& name) { return grpo::testing::scratch_dir("grpo_firstday_", name); }

// The last line of `s` that starts with `prefix` ("" when none).
std::string line_starting(const std::string& s, const std::string& prefix) {
  std::string found;
  size_t at = 0;
  while (at < s.size()) {
    size_t nl = s.find('\n', at);
    if (nl == std::string::npos) nl = s.size();
    if (s.compare(at, prefix.size(), prefix) == 0) found = s.substr(at, nl - at);
    at = nl + 1;
  }
  return found;
}

// One SFT stage (the tokenizer, the task data and weights that give GRPO groups with unequal
// rewards, so a GRPO step really moves the weights).
class FirstDay : public ::testing::Test {
 protected:
  static sfs::path sft_dir;
  static void SetUpTestSuite() {
    sft_dir = scratch("sft");
    auto r = run_grpo("sft " + kConfig + " stages=[] trainer.max_steps=100 optimizer.learning_rate=1.0e-2" +
                      " trainer.output_dir=" + sft_dir.string() + " tokenizer.path=" + (sft_dir / "tokenizer.model").string());
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
  }
  static void TearDownTestSuite() { sfs::remove_all(sft_dir); }
  // A single GRPO stage from the SFT weights into `dir`.
  static std::string grpo_args(const sfs::path& dir) {
    return "train " + kConfig + " stages=[] task.name=none trainer.output_dir=" + dir.string() +
           " tokenizer.path=" + (sft_dir / "tokenizer.model").string() +
           " data.train_file=" + (sft_dir / "data" / "train.jsonl").string() +
           " data.eval_file=" + (sft_dir / "data" / "eval.jsonl").string() +
           " model.path=" + (sft_dir / "final").string();
  }
};
sfs::path FirstDay::sft_dir;

void expect_same_metrics(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (auto& [k, v] : a[i].items())
      if (k.rfind("time/", 0) != 0 && k.rfind("tokens_per_second", 0) != 0)
        EXPECT_EQ(v, b[i][k]) << "step " << i + 1 << " metric " << k;
}

// A run of 2 steps extended to 4 with --resume auto trains exactly steps 3 and 4, and (constant
// learning rate, no warmup: the schedule rule of docs/checkpoints.md leaves it unchanged) every
// step's metrics equal those of one uninterrupted run of 4 steps. Run again unchanged, it says it
// is finished and what to raise; a corrupt --resume PATH of the finished run fails as on an
// unfinished one.
TEST_F(FirstDay, ExtendingAFinishedRunTrainsTheAddedSteps) {
  auto whole = scratch("whole");
  auto ext = scratch("extended");
  const std::string sched = " optimizer.lr_scheduler_type=constant optimizer.warmup_steps=0 optimizer.warmup_ratio=0";
  ASSERT_EQ(run_grpo(grpo_args(whole) + sched + " trainer.max_steps=4").rc, 0);
  ASSERT_EQ(run_grpo(grpo_args(ext) + sched + " trainer.max_steps=2").rc, 0);
  ASSERT_EQ(read_jsonl(ext / "metrics.jsonl").size(), 2u);

  auto r = run_grpo(grpo_args(ext) + sched + " trainer.max_steps=4 --resume auto");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("finished at 2 steps; trainer.max_steps is now 4: continuing it for 2 more steps"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("resumed from " + (ext / "checkpoints" / "checkpoint-00000002").string() + " at step 2"),
            std::string::npos) << r.err;
  auto a = read_jsonl(whole / "metrics.jsonl");
  auto b = read_jsonl(ext / "metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  expect_same_metrics(a, b);
  // Equality means something only if the added steps changed the weights.
  EXPECT_GT(b[2]["grad_norm"].get<double>() + b[3]["grad_norm"].get<double>(), 0.0) << b[2].dump();
  auto stage = nlohmann::json::parse(std::ifstream(ext / "stage.json"));
  EXPECT_EQ(stage["steps"], 4);
  EXPECT_TRUE(sfs::exists(ext / "checkpoints" / "checkpoint-00000004" / "COMPLETE"));
  EXPECT_NE(r.out.find("| grpo | 4 |"), std::string::npos) << r.out;  // evaluated again after the new steps

  // Unchanged: nothing trained, and the message names the key to raise.
  auto again = run_grpo(grpo_args(ext) + sched + " trainer.max_steps=4 --resume auto");
  EXPECT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.err.find("already finished at 4 steps (trainer.max_steps = 4)"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("to train it further, raise trainer.max_steps and run again with --resume auto"),
            std::string::npos) << again.err;
  EXPECT_EQ(read_jsonl(ext / "metrics.jsonl").size(), 4u);

  // A truncated copy of the last checkpoint, named explicitly: exit 2 with the same error line
  // whether the run has finished or not.
  auto bad = ext / "bad-checkpoint";
  sfs::copy(ext / "checkpoints" / "checkpoint-00000004", bad);
  sfs::resize_file(bad / "model.safetensors", sfs::file_size(bad / "model.safetensors") / 2);
  auto finished = run_grpo(grpo_args(ext) + sched + " trainer.max_steps=4 --resume " + bad.string());
  EXPECT_EQ(finished.rc, 2) << finished.err;
  const std::string line = line_starting(finished.err, "grpo: error: ");
  EXPECT_NE(line.find("'" + bad.string() + "' is not a usable checkpoint: model.safetensors"), std::string::npos)
      << finished.err;
  sfs::remove(ext / "stage.json");  // the same run, now unfinished
  auto unfinished = run_grpo(grpo_args(ext) + sched + " trainer.max_steps=4 --resume " + bad.string());
  EXPECT_EQ(unfinished.rc, 2) << unfinished.err;
  EXPECT_EQ(line_starting(unfinished.err, "grpo: error: "), line);
  sfs::remove_all(whole);
  sfs::remove_all(ext);
}

// Extending stage 1 of a pipeline whose stage 2 has already trained from it is refused.
TEST_F(FirstDay, ExtendingAnEarlierStageOfAFinishedPipelineIsRefused) {
  auto d = scratch("pipeline");
  const std::string base = grpo_args(d) + " 'stages=[{kind: grpo, max_steps: 1}, {kind: grpo, max_steps: 1}]'";
  ASSERT_EQ(run_grpo(base).rc, 0);
  auto r = run_grpo(grpo_args(d) + " 'stages=[{kind: grpo, max_steps: 2}, {kind: grpo, max_steps: 1}]' --resume auto");
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_NE(r.err.find("stage 1 finished at 1 steps and the config now asks for 2, but stage 2 has already trained"),
            std::string::npos) << r.err;
  sfs::remove_all(d);
}

// Prompts without an `answer` field: fine for a length-only reward (no reward reads it), an error
// naming the field and the way out when math_answer reads it. No held-out set: the end-of-run
// table says so and how to add one.
TEST_F(FirstDay, AnswerFieldIsRequiredOnlyWhenARewardReadsIt) {
  auto d = scratch("noanswer");
  sfs::create_directories(d);
  {
    std::ofstream f(d / "prompts.jsonl");
    for (int i = 0; i < 8; ++i) f << nlohmann::json{{"prompt", std::to_string(i) + "+1="}}.dump() << "\n";
  }
  const std::string args = "train " + kConfig + " stages=[] task.name=none trainer.max_steps=1 'data.eval_file=\"\"'" +
                           " tokenizer.path=" + (sft_dir / "tokenizer.model").string() +
                           " model.path=" + (sft_dir / "final").string() + " data.train_file=" + (d / "prompts.jsonl").string();
  auto ok = run_grpo(args + " trainer.output_dir=" + (d / "length").string() + " 'reward.functions=[{name: length}]'");
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(read_jsonl(d / "length" / "metrics.jsonl").size(), 1u);
  EXPECT_NE(ok.out.find("no held-out set, so no end-of-run evaluation: set data.eval_file"), std::string::npos) << ok.out;
  EXPECT_EQ(ok.out.find("| after stage |"), std::string::npos) << "a table header over no rows: " << ok.out;

  auto bad = run_grpo(args + " trainer.output_dir=" + (d / "math").string() + " 'reward.functions=[{name: math_answer}]'");
  EXPECT_EQ(bad.rc, 2) << bad.err;
  EXPECT_NE(bad.err.find((d / "prompts.jsonl").string() + ":1: missing field 'answer' (data.answer_field: a configured "
                         "reward reads it; if none does, data.answer_field: \"\" turns this check off)"),
            std::string::npos) << bad.err;
  sfs::remove_all(d);
}

// Completions cut at 2 tokens (the SFT policy writes "<think>..." first, so none ends): the step
// warns, naming rollout.max_completion_length, once for a streak of 3 steps (repeats come every 10).
TEST_F(FirstDay, AllTruncatedStepsWarnOnce) {
  auto d = scratch("truncated");
  auto r = run_grpo(grpo_args(d) + " trainer.max_steps=3 rollout.max_completion_length=2 'data.eval_file=\"\"'");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto m = read_jsonl(d / "metrics.jsonl");
  ASSERT_EQ(m.size(), 3u);
  for (const auto& row : m) ASSERT_EQ(row["completions/truncated_ratio"], 1.0) << row.dump();
  const std::string w = "every completion was truncated at rollout.max_completion_length = 2 tokens";
  EXPECT_NE(r.err.find("step 1: " + w), std::string::npos) << r.err;
  size_t count = 0;
  for (size_t at = r.err.find(w); at != std::string::npos; at = r.err.find(w, at + w.size())) ++count;
  EXPECT_EQ(count, 1u) << r.err;
  sfs::remove_all(d);
}

}  // namespace
