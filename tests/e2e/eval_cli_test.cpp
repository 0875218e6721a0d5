// `grpo eval` end to end on a tiny model after a few seconds of SFT (`grpo sft`), evaluated from the
// run's final/ directory on the arithmetic task's held-out split: the per-problem JSONL and the summary, whose figures are
// recomputed here from the lines (pass@k from exact binomials); a run SIGKILLed in the middle of a
// chunk resumes to the same lines and totals; a file written under other settings is refused.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::read_jsonl;

constexpr int kProblems = 24;  // task.num_eval
constexpr int kSamples = 4;

// C(a, b) in double, by the multiplicative formula (exact for these small values).
double choose(int a, int b) {
  if (b < 0 || b > a) return 0;
  double r = 1;
  for (int i = 1; i <= b; ++i) r = r * (a - b + i) / i;
  return r;
}

class EvalCli : public ::testing::Test {
 protected:
  static sfs::path dir;
  static grpo::testing::CmdResult sft, full;
  static void SetUpTestSuite() {
    dir = grpo::testing::scratch_dir("grpo_eval_", "cli");
    sfs::create_directories(dir);
    // A few seconds of SFT on 1-digit sums: greedy and sampled answers are right now and then,
    // so pass@k and maj@k have something to count.
    std::ofstream(dir / "sft.yaml")
        << "task:\n  name: arithmetic\n  num_train: 512\n  num_eval: " << kProblems
        << "\n  seed: 3\n  tokenizer_vocab_size: 160\n  arithmetic: {min_digits: 1, max_digits: 1, operations: [\"+\"]}\n"
           "tokenizer:\n  path: " << (dir / "run" / "tokenizer.model").string() << "\n  chat_template: plain\n"
           "model:\n  hidden_size: 64\n  intermediate_size: 128\n  num_hidden_layers: 2\n  num_attention_heads: 2\n"
           "  num_key_value_heads: 1\n  max_position_embeddings: 192\n"
           "data:\n  max_prompt_length: 96\n"
           "rollout:\n  max_completion_length: 48\n  temperature: 1.0\n  max_batch_size: 4\n"
           "reward:\n  functions:\n    - {name: format, weight: 0.2}\n    - {name: math_answer, weight: 1.0}\n"
           "optimizer:\n  learning_rate: 1.0e-2\n"
           "trainer:\n  output_dir: " << (dir / "run").string() << "\n  per_device_train_batch_size: 32\n"
           "  max_steps: 200\n  num_threads: 1\n  seed: 5\n";
    sft = grpo::testing::run_grpo("sft " + (dir / "sft.yaml").string());
    full = sft.rc == 0 ? grpo::testing::run_grpo(args("full.jsonl")) : grpo::testing::CmdResult{-1, "", "grpo sft failed: " + sft.err};
  }
  static void TearDownTestSuite() { sfs::remove_all(dir); }
  static std::string args(const std::string& out, const std::string& extra = "", const std::string& ks = "1,2,4") {
    // The run's final/ directory: its own config.yaml gives the template, rewards and held-out file.
    return "eval " + (dir / "run" / "final").string() + " -n " + std::to_string(kSamples) + " --k " + ks +
           " --no-progress --out " + (dir / out).string() + extra;
  }
  static nlohmann::json summary(const std::string& stem) {
    return nlohmann::json::parse(std::ifstream(dir / (stem + ".summary.json")));
  }
  static std::map<int64_t, nlohmann::json> by_index(const std::vector<nlohmann::json>& lines) {
    std::map<int64_t, nlohmann::json> m;
    for (const auto& l : lines) EXPECT_TRUE(m.emplace(l["index"].get<int64_t>(), l).second) << "twice: " << l["index"];
    return m;
  }
};
sfs::path EvalCli::dir;
grpo::testing::CmdResult EvalCli::sft;
grpo::testing::CmdResult EvalCli::full;

TEST_F(EvalCli, WritesOneLinePerProblemAndTheirSummary) {
  ASSERT_EQ(sft.rc, 0) << sft.err;
  ASSERT_EQ(full.rc, 0) << full.err;
  auto lines = by_index(read_jsonl(dir / "full.jsonl"));
  ASSERT_EQ(lines.size(), static_cast<size_t>(kProblems));
  EXPECT_EQ(lines.begin()->first, 0);
  EXPECT_EQ(lines.rbegin()->first, kProblems - 1);
  // Every figure of the summary, recomputed from the lines.
  double correct = 0, formatted = 0, truncated = 0, length = 0, total_reward = 0;
  std::map<int, double> pass;
  for (const auto& [i, l] : lines) {
    ASSERT_EQ(l["samples"].size(), static_cast<size_t>(kSamples)) << l.dump();
    EXPECT_NE(l["prompt"].get<std::string>().find("What is "), std::string::npos) << l["prompt"];
    EXPECT_LE(l["length"].get<int>(), 48);
    correct += l["correct"].get<bool>();
    formatted += l["formatted"].get<bool>();
    truncated += l["truncated"].get<bool>();
    length += l["length"].get<double>();
    total_reward += l["rewards"]["total"].get<double>();
    int c = 0;
    for (bool b : l["sample_correct"]) c += b;
    EXPECT_EQ(l["num_correct"], c);
    for (int k : {1, 2, 4}) pass[k] += 1.0 - choose(kSamples - c, k) / choose(kSamples, k);  // Chen et al. eq. 1
  }
  auto s = summary("full");
  EXPECT_EQ(s["num_problems"], kProblems);
  EXPECT_EQ(s["num_samples"], kSamples);
  EXPECT_NEAR(s["greedy_accuracy"].get<double>(), correct / kProblems, 1e-12);
  EXPECT_NEAR(s["format_rate"].get<double>(), formatted / kProblems, 1e-12);
  EXPECT_NEAR(s["truncation_rate"].get<double>(), truncated / kProblems, 1e-12);
  EXPECT_NEAR(s["mean_length"].get<double>(), length / kProblems, 1e-12);
  EXPECT_NEAR(s["reward_means"]["total"].get<double>(), total_reward / kProblems, 1e-6);
  for (int k : {1, 2, 4}) EXPECT_NEAR(s["pass@" + std::to_string(k)].get<double>(), pass[k] / kProblems, 1e-12) << k;
  for (const char* key : {"maj@1", "maj@2", "maj@4"}) EXPECT_TRUE(s.contains(key)) << key;
  // The SFT model is right now and then (else the sums above would all be 0 = 0).
  EXPECT_GT(pass[4], 0);
  // The same prompts, template and rewards as the stage's own end-of-stage evaluation (stage.json,
  // all problems in one rollout call, where grpo eval runs chunks of 4): the greedy figures agree,
  // up to one problem whose argmax a different batch shape's rounding could move.
  auto stage = nlohmann::json::parse(std::ifstream(dir / "run" / "stage.json"))["eval"];
  EXPECT_NEAR(s["greedy_accuracy"].get<double>(), stage["accuracy"].get<double>(), 1.0 / kProblems + 1e-9);
  EXPECT_NEAR(s["reward_means"]["format"].get<double>(), stage["reward_means"]["format"].get<double>(),
              1.0 / kProblems + 1e-9);
  EXPECT_NE(full.out.find("| greedy_accuracy |"), std::string::npos) << full.out;
}

TEST_F(EvalCli, ResumesAfterSigkillWithTheSameLinesAndTotals) {
  ASSERT_EQ(full.rc, 0) << full.err;
  // Killed right after problem 6's line: chunk 1 (problems 4-7, rollout.max_batch_size 4) is half written.
  auto killed = grpo::testing::run_cmd(std::string(GRPO_TEST_BIN_DIR) + "/e2e_eval_kill 6 " + args("cut.jsonl"));
  ASSERT_EQ(killed.rc, 128 + 9) << "the fault injection did not fire: " << killed.err;
  ASSERT_EQ(read_jsonl(dir / "cut.jsonl").size(), 6u);
  ASSERT_FALSE(sfs::exists(dir / "cut.summary.json"));
  // What a kill in the middle of a write leaves: a torn last line. The resume cuts it off.
  std::ofstream(dir / "cut.jsonl", std::ios::app) << "{\"index\": 7, \"prompt\": \"<|im_sta";

  auto r = grpo::testing::run_grpo(args("cut.jsonl"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto a = by_index(read_jsonl(dir / "full.jsonl"));
  auto b = by_index(read_jsonl(dir / "cut.jsonl"));
  ASSERT_EQ(b.size(), a.size());
  for (const auto& [i, line] : a) EXPECT_EQ(b[i], line) << "problem " << i;
  auto sa = summary("full"), sb = summary("cut");
  EXPECT_EQ(sb["resumed"], 6);
  for (const char* k : {"resumed", "out"}) sa.erase(k), sb.erase(k);
  EXPECT_EQ(sa, sb);

  // Lines written under other settings are refused, not mixed in.
  auto other = grpo::testing::run_grpo(args("cut.jsonl", " --seed 99"));
  EXPECT_EQ(other.rc, 2);
  EXPECT_NE(other.err.find("other settings"), std::string::npos) << other.err;
}

TEST_F(EvalCli, BadArgumentsExitTwo) {
  auto r = grpo::testing::run_grpo(args("bad.jsonl", "", "1,8"));  // k > n
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--k 8"), std::string::npos) << r.err;
  r = grpo::testing::run_grpo("eval " + (dir / "sft.yaml").string() + " --task nosuchtask --out " + (dir / "x.jsonl").string());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("nosuchtask"), std::string::npos) << r.err;
}

}  // namespace
