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

// configs/ci-smoke.yaml with its reward section replaced by `rewards` (YAML list lines), trained
// into dir/run with `extra` overrides; returns the GRPO stage's metrics.jsonl rows.
std::vector<nlohmann::json> train_ci_smoke_with(const fs::path& dir, const std::string& rewards,
                                                const std::string& extra) {
  std::ifstream in(std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cfg = ss.str();
  const std::string shipped = "    - {name: format, weight: 0.2}\n    - {name: code, weight: 1.0}\n";
  EXPECT_NE(cfg.find(shipped), std::string::npos) << "configs/ci-smoke.yaml's reward section changed";
  if (cfg.find(shipped) == std::string::npos) return {};
  cfg.replace(cfg.find(shipped), shipped.size(), rewards);
  fs::create_directories(dir);
  std::ofstream(dir / "cfg.yaml") << cfg;
  const fs::path run = dir / "run";
  fs::remove_all(run);
  auto r = grpo::testing::run_grpo("train " + (dir / "cfg.yaml").string() + " trainer.output_dir=" + run.string() +
                                   " tokenizer.path=" + (run / "tokenizer.model").string() + " " + extra);
  EXPECT_EQ(r.rc, 0) << r.err << r.out;
  std::vector<nlohmann::json> out;
  std::ifstream m(run / "stage-2-grpo" / "metrics.jsonl");
  std::string line;
  while (std::getline(m, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string python_reward(const std::string& file, const std::string& function) {
  return "    - {name: python, weight: 1.0, file: " + std::string(GRPO_SOURCE_DIR) + "/tests/reward/python_rewards/" + file +
         ", function: " + function + "}\n";
}

fs::path scratch(const std::string& name) {
  return fs::temp_directory_path() / ("grpo_python_reward_" + name + "_" + std::to_string(getpid()));
}

TEST(PythonRewardTraining, SameRewardCurveAsTheBuiltInItReimplements) {
  const fs::path dir = scratch("train");
  std::vector<std::vector<double>> curves;
  for (const std::string& fn : {std::string("    - {name: format, weight: 1.0}\n"),
                                python_reward("format_equivalent.py", "format_strict")}) {
    auto metrics = train_ci_smoke_with(dir, fn, "stages.1.max_steps=10 trainer.max_steps=10");
    std::vector<double> curve;
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
  const fs::path dir = scratch("ids");
  auto metrics = train_ci_smoke_with(dir, python_reward("trl_length.py", "reward_func"),
                                     "stages.0.max_steps=10 stages.1.max_steps=2 trainer.max_steps=2");
  ASSERT_EQ(metrics.size(), 2u);
  for (const auto& m : metrics) {
    EXPECT_GT(m.at("completions/length/mean").get<double>(), 0.0);
    EXPECT_NEAR(m.at("rewards/reward_func/mean").get<double>(), m.at("completions/length/mean").get<double>(), 1e-4)
        << m.dump();
  }
  fs::remove_all(dir);
}

// TRL passes trainer_state (its TrainerState): global_step is the number of optimizer steps done
// before the batch is scored, so the step-s row of metrics.jsonl (1-based) sees s - 1.
TEST(PythonRewardTraining, TrainerStateCarriesTheStep) {
  const fs::path dir = scratch("state");
  auto metrics = train_ci_smoke_with(dir, python_reward("trl_state.py", "step_reward"),
                                     "stages.0.max_steps=10 stages.1.max_steps=3 trainer.max_steps=3");
  ASSERT_EQ(metrics.size(), 3u);
  for (size_t i = 0; i < metrics.size(); ++i)
    EXPECT_DOUBLE_EQ(metrics[i].at("rewards/step_reward/mean").get<double>(), 300.0 + static_cast<double>(i))
        << metrics[i].dump();
  fs::remove_all(dir);
}

}  // namespace
