// A training run with a `python` reward in place of the built-in it reimplements gives the same
// reward curve (same seed): configs/ci-smoke.yaml (SFT, then 10 GRPO steps) with the reward section
// set to the built-in `format` reward in one run and to python_rewards/format_equivalent.py in the
// other. About 6 s per run on CPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"

namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> read_metrics(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(PythonRewardTraining, SameRewardCurveAsTheBuiltInItReimplements) {
  const std::string src = GRPO_SOURCE_DIR;
  std::ifstream in(src + "/configs/ci-smoke.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string base = ss.str();
  const std::string rewards = "    - {name: format, weight: 0.2}\n    - {name: code, weight: 1.0}\n";
  ASSERT_NE(base.find(rewards), std::string::npos) << "configs/ci-smoke.yaml's reward section changed";
  const fs::path dir = fs::temp_directory_path() / ("grpo_python_reward_train_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::vector<std::vector<double>> curves;
  for (const std::string fn : {std::string("    - {name: format, weight: 1.0}\n"),
                               "    - {name: python, weight: 1.0, file: " + src +
                                   "/tests/reward/python_rewards/format_equivalent.py, function: format_strict}\n"}) {
    std::string cfg = base;
    cfg.replace(cfg.find(rewards), rewards.size(), fn);
    const fs::path run = dir / std::to_string(curves.size());
    std::ofstream(dir / "cfg.yaml") << cfg;
    auto r = grpo::testing::run_grpo("train " + (dir / "cfg.yaml").string() + " trainer.output_dir=" + run.string() +
                                     " tokenizer.path=" + (run / "tokenizer.model").string() + " stages.1.max_steps=10 trainer.max_steps=10");
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
    std::vector<double> curve;
    auto metrics = read_metrics(run / "stage-2-grpo" / "metrics.jsonl");
    for (const auto& m : metrics) curve.push_back(m.at("reward").get<double>());
    ASSERT_EQ(curve.size(), 10u);
    // Each function is logged under its name: the kind for a built-in, the function for python.
    EXPECT_TRUE(metrics.back().contains(curves.empty() ? "rewards/format/mean" : "rewards/format_strict/mean"))
        << metrics.back().dump();
    curves.push_back(curve);
  }
  EXPECT_EQ(curves[0], curves[1]);
  // The curve is not trivially flat: after SFT some completions follow the format and some do not.
  EXPECT_GT(*std::max_element(curves[0].begin(), curves[0].end()), 0.0);
  EXPECT_LT(*std::min_element(curves[0].begin(), curves[0].end()), 1.0);
  fs::remove_all(dir);
}

// TRL's "reward longer completions" example reads completion_ids: in training they are the
// completion's token ids, so its mean is the logged mean completion length in tokens.
TEST(PythonRewardTraining, CompletionIdsAreTheCompletionTokens) {
  const std::string src = GRPO_SOURCE_DIR;
  const fs::path dir = fs::temp_directory_path() / ("grpo_python_reward_ids_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ifstream in(src + "/configs/ci-smoke.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cfg = ss.str();
  const std::string rewards = "    - {name: format, weight: 0.2}\n    - {name: code, weight: 1.0}\n";
  ASSERT_NE(cfg.find(rewards), std::string::npos);
  cfg.replace(cfg.find(rewards), rewards.size(),
              "    - {name: python, file: " + src + "/tests/reward/python_rewards/trl_length.py, function: reward_func}\n");
  std::ofstream(dir / "cfg.yaml") << cfg;
  auto r = grpo::testing::run_grpo("train " + (dir / "cfg.yaml").string() + " trainer.output_dir=" + (dir / "run").string() +
                                   " tokenizer.path=" + (dir / "run" / "tokenizer.model").string() +
                                   " stages.0.max_steps=10 stages.1.max_steps=2 trainer.max_steps=2");
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  for (const auto& m : read_metrics(dir / "run" / "stage-2-grpo" / "metrics.jsonl")) {
    EXPECT_GT(m.at("completions/length/mean").get<double>(), 0.0);
    EXPECT_NEAR(m.at("rewards/reward_func/mean").get<double>(), m.at("completions/length/mean").get<double>(), 1e-4)
        << m.dump();
  }
  fs::remove_all(dir);
}

// TRL passes trainer_state (its TrainerState): global_step is the number of optimizer steps done
// before the batch is scored, so the step-s row of metrics.jsonl (1-based) sees s - 1.
TEST(PythonRewardTraining, TrainerStateCarriesTheStep) {
  const std::string src = GRPO_SOURCE_DIR;
  const fs::path dir = fs::temp_directory_path() / ("grpo_python_reward_state_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ifstream in(src + "/configs/ci-smoke.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cfg = ss.str();
  const std::string rewards = "    - {name: format, weight: 0.2}\n    - {name: code, weight: 1.0}\n";
  ASSERT_NE(cfg.find(rewards), std::string::npos);
  cfg.replace(cfg.find(rewards), rewards.size(),
              "    - {name: python, file: " + src + "/tests/reward/python_rewards/trl_state.py, function: step_reward}\n");
  std::ofstream(dir / "cfg.yaml") << cfg;
  auto r = grpo::testing::run_grpo("train " + (dir / "cfg.yaml").string() + " trainer.output_dir=" + (dir / "run").string() +
                                   " tokenizer.path=" + (dir / "run" / "tokenizer.model").string() +
                                   " stages.0.max_steps=10 stages.1.max_steps=3 trainer.max_steps=3");
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  auto metrics = read_metrics(dir / "run" / "stage-2-grpo" / "metrics.jsonl");
  ASSERT_EQ(metrics.size(), 3u);
  for (size_t i = 0; i < metrics.size(); ++i)
    EXPECT_DOUBLE_EQ(metrics[i].at("rewards/step_reward/mean").get<double>(), 300.0 + static_cast<double>(i))
        << metrics[i].dump();
  fs::remove_all(dir);
}

}  // namespace
