// HumanEval through the `code` reward and the sandbox: the converted file's tests (HumanEval's own
// check(candidate), run by the assert harness) accept the canonical solutions and reject wrong
// ones. The expected values come from the dataset (its canonical solutions pass its tests by
// construction), not from our output. Skipped when set-up has not converted the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "grpo/data/tasks.h"
#include "grpo/reward/code_reward.h"
#include "sandbox/sandbox_test_util.h"

namespace grpo::test {
namespace {

std::vector<nlohmann::json> humaneval_rows() {
  std::vector<nlohmann::json> rows;
  std::ifstream f(data::default_task_source(config::TaskName::HUMANEVAL));
  for (std::string line; std::getline(f, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

config::SandboxConfig humaneval_limits() {
  config::SandboxConfig c = small_limits();
  c.wall_time_s = 10.0;  // survives a loaded 2-core machine; the tests check scores, not limits
  c.cpu_time_s = 5.0;
  return c;
}

std::string completion(const std::string& program) { return "Here is the function:\n```python\n" + program + "```\n"; }

// Every 8th problem: 20 problems spread over the set (HumanEval/0, /8, ..., /152).
std::vector<nlohmann::json> sample20() {
  auto all = humaneval_rows();
  std::vector<nlohmann::json> out;
  for (size_t i = 0; i < all.size() && out.size() < 20; i += 8) out.push_back(all[i]);
  return out;
}

TEST(HumanEval, CanonicalSolutionsScoreOneWrongOnesLess) {
  const std::string src = data::default_task_source(config::TaskName::HUMANEVAL);
  if (!std::filesystem::exists(src)) GTEST_SKIP() << src << " not found: run scripts/fetch_assets.sh";
  auto rows = sample20();
  ASSERT_EQ(rows.size(), 20u);
  config::CodeParams p;
  p.scoring = config::CodeScoring::ALL_OR_NOTHING;
  reward::CodeReward code(p, humaneval_limits());
  std::vector<reward::RewardInput> good, wrong;
  for (const auto& r : rows) {
    const std::string prompt = r["prompt"], body = r["canonical_solution"];
    good.push_back({"", completion(prompt + body), r});
    // The signature and docstring with a body that returns None.
    wrong.push_back({"", completion(prompt + "    return None\n"), r});
  }
  auto g = code.score_detailed(good);
  auto w = code.score_detailed(wrong);
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string id = rows[i]["task_id"];
    EXPECT_FALSE(g[i].masked) << id << ": " << g[i].problem;
    EXPECT_EQ(g[i].reward, 1.0f) << id << " canonical solution: passed " << g[i].passed << "/" << g[i].total << " "
                                 << g[i].problem;
    EXPECT_LT(w[i].reward, 1.0f) << id << " `return None` passed";
  }
}

}  // namespace
}  // namespace grpo::test
