// The grpo executable as a user runs it: exit codes, one-line errors, show -> check round trip.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>

#include "common/subprocess.h"

namespace {

using grpo::testing::CmdResult;
CmdResult run(const std::string& args) { return grpo::testing::run_grpo(args); }

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(CliConfig, ShowOutputRoundTripsThroughCheck) {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(GRPO_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    std::string cfg = entry.path().string();
    CmdResult shown = run("config show " + cfg + " grpo.beta=0.04 rollout.temperature=0.9");
    ASSERT_EQ(shown.rc, 0) << cfg << ": " << shown.err;
    EXPECT_NE(shown.out.find("beta: 0.04"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("temperature: 0.9"), std::string::npos);
    auto tmp = std::filesystem::temp_directory_path() / ("grpo_show_" + std::to_string(::getpid()) + "_" + entry.path().filename().string());
    std::ofstream(tmp) << shown.out;
    CmdResult checked = run("config check --no-files " + tmp.string());  // a shipped model may not be fetched here
    EXPECT_EQ(checked.rc, 0) << cfg << ": " << checked.err;
    CmdResult again = run("config show " + tmp.string());
    EXPECT_EQ(again.out, shown.out) << cfg << ": resolved config changed after a round trip";
    std::filesystem::remove(tmp);
  }
}

TEST(CliConfig, BadInputsExitTwoWithOneLine) {
  auto dir = std::filesystem::temp_directory_path() / ("grpo_cli_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "empty.yaml").close();
  std::ofstream(dir / "malformed.yaml") << "grpo: [1,\n";
  std::ofstream(dir / "range.yaml") << "grpo:\n  num_generations: 1\n";
  std::ofstream(dir / "fp8.yaml") << "model:\n  device: cpu\nkernels:\n  fp8: true\n";
  const std::pair<std::string, std::string> cases[] = {
      {"config check " + (dir / "missing.yaml").string(), "not found"},
      {"config check " + (dir / "empty.yaml").string(), "empty"},
      {"config check " + (dir / "malformed.yaml").string(), "malformed YAML"},
      {"config check " + dir.string(), "is a directory"},
      {"config check " + (dir / "range.yaml").string(), "range.yaml:2:20: grpo.num_generations must be an integer >= 2, got 1"},
      // A switch that cannot take effect is refused, never ignored (issue 14).
      {"config check --no-files " + (dir / "fp8.yaml").string(), "fp8.yaml:4:8: kernels.fp8: FP8 linears need a CUDA sm_90 GPU"},
  };
  for (const auto& [args, expect] : cases) {
    CmdResult r = run(args);
    EXPECT_EQ(r.rc, 2) << args << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": stderr should be one line, got:\n" << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << ": " << r.err;
  }
  std::filesystem::remove_all(dir);
}

// config check looks at the files a config names: a missing one is an error naming the key and
// its place in the file; --no-files checks the values only. Files the run makes (a task's data
// and tokenizer) are not required.
TEST(CliConfig, CheckNamesMissingFilesByKey) {
  auto dir = std::filesystem::temp_directory_path() / ("grpo_cli_paths_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "train.jsonl") << "{\"prompt\": \"x\", \"answer\": 1}\n";
  const std::string train = (dir / "train.jsonl").string();
  const std::pair<std::string, std::string> cases[] = {
      {"model:\n  path: /no/such/model.gguf\n", "cfg.yaml:2:9: model.path: /no/such/model.gguf: no such file or directory"},
      {"data:\n  train_file: /no/such/train.jsonl\n",
       "cfg.yaml:2:15: data.train_file: /no/such/train.jsonl: no such file or directory"},
      {"data:\n  train_file: " + train + "\n  eval_file: /no/such/eval.jsonl\n",
       "cfg.yaml:3:14: data.eval_file: /no/such/eval.jsonl: no such file or directory"},
      {"tokenizer:\n  path: /no/such/tokenizer.json\n",
       "cfg.yaml:2:9: tokenizer.path: /no/such/tokenizer.json: no such file or directory"},
  };
  for (const auto& [yaml, expect] : cases) {
    std::ofstream(dir / "cfg.yaml") << yaml;
    CmdResult r = run("config check " + (dir / "cfg.yaml").string());
    EXPECT_EQ(r.rc, 2) << yaml << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("ok:"), std::string::npos) << r.out;
    CmdResult values_only = run("config check --no-files " + (dir / "cfg.yaml").string());
    EXPECT_EQ(values_only.rc, 0) << values_only.err;
  }
  // An override is checked too; existing files pass.
  std::ofstream(dir / "cfg.yaml") << "data:\n  train_file: " << train << "\n";
  EXPECT_EQ(run("config check " + (dir / "cfg.yaml").string()).rc, 0);
  CmdResult ov = run("config check " + (dir / "cfg.yaml").string() + " model.path=/no/such/dir");
  EXPECT_EQ(ov.rc, 2);
  EXPECT_NE(ov.err.find("model.path: /no/such/dir: no such file or directory"), std::string::npos) << ov.err;
  // A built-in task writes its data and trains its tokenizer: not required to exist yet.
  std::ofstream(dir / "cfg.yaml") << "task:\n  name: arithmetic\n  tokenizer_vocab_size: 100\n"
                                  << "tokenizer:\n  path: " << (dir / "not-yet" / "tok.model").string() << "\n"
                                  << "data:\n  train_file: " << (dir / "not-yet" / "train.jsonl").string() << "\n";
  CmdResult task = run("config check " + (dir / "cfg.yaml").string());
  EXPECT_EQ(task.rc, 0) << task.err;
  // At run time the missing model is named by its key as well.
  std::ofstream(dir / "run.yaml") << "model:\n  path: /no/such/model.gguf\ntrainer:\n  output_dir: "
                                  << (dir / "run").string() << "\ndata:\n  train_file: " << train << "\n"
                                  << "reward:\n  functions:\n    - {name: format}\n";
  CmdResult train_run = run("train " + (dir / "run.yaml").string());
  EXPECT_EQ(train_run.rc, 2) << train_run.err;
  EXPECT_NE(train_run.err.find("grpo: error: model.path: /no/such/model.gguf: no such file or directory"),
            std::string::npos) << train_run.err;
  std::filesystem::remove_all(dir);
}

// The metric list of `grpo train --help`: why the loss reads 0 at on-policy steps, and what to
// watch instead.
TEST(CliConfig, TrainHelpExplainsTheLossAndListsTheMetricsToWatch) {
  CmdResult h = run("train --help");
  EXPECT_EQ(h.rc, 0) << h.err;
  for (const char* s : {"Metrics (metrics.jsonl", "0 or near it at on-policy steps while the gradient is not",
                        "policy ratio is exactly 1", "Watch reward and grad_norm instead", "reward, reward_std",
                        "grad_norm ", "kl ", "clip_ratio/low|high|region", "accuracy "})
    EXPECT_NE(h.out.find(s), std::string::npos) << s << " missing in:\n" << h.out;
}

TEST(CliConfig, VersionAndUsage) {
  CmdResult v = run("--version");
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("grpo "), std::string::npos);
  CmdResult u = run("no-such-command");
  EXPECT_EQ(u.rc, 2);
}

}  // namespace
