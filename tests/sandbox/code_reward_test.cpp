// The `code` reward: code-block extraction, test parsing, output comparison and end-to-end scores
// through the sandbox, with hand-checked expected values.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo/reward/code_reward.h"
#include "grpo/reward/registry.h"
#include "grpo/reward/sandbox_pool.h"
#include "grpo/util/error.h"
#include "sandbox/sandbox_test_util.h"

namespace grpo::test {
namespace {

using config::CodeLanguage;
using reward::extract_code_block;

TEST(CodeExtraction, LastMatchingFencedBlock) {
  const std::string text =
      "think...\n```python\nx = 1\n```\nthen\n```cpp\nint main(){}\n```\nfinal:\n```py\ndef f():\n    return 2\n```\n";
  EXPECT_EQ(extract_code_block(text, CodeLanguage::PYTHON), "def f():\n    return 2\n");
  EXPECT_EQ(extract_code_block(text, CodeLanguage::CPP), "int main(){}\n");
  EXPECT_EQ(extract_code_block("```\nprint(1)\n```", CodeLanguage::PYTHON), "print(1)\n");  // untagged counts
  EXPECT_EQ(extract_code_block("```Python3 title=a\nprint(1)\n```", CodeLanguage::PYTHON), "print(1)\n");
  EXPECT_EQ(extract_code_block("```python\nprint(1)\n", CodeLanguage::PYTHON), "print(1)\n");  // unclosed last fence
  EXPECT_FALSE(extract_code_block("no code here", CodeLanguage::PYTHON).has_value());
  EXPECT_FALSE(extract_code_block("```js\nconsole.log(1)\n```", CodeLanguage::PYTHON).has_value());
}

TEST(CodeTestsParsing, AssertsPairsAndErrors) {
  auto a = reward::parse_code_tests(nlohmann::json::parse(R"(["assert f(1) == 2", "assert f(2) == 3"])"));
  EXPECT_EQ(a.asserts.size(), 2u);
  EXPECT_TRUE(a.io.empty());
  auto io = reward::parse_code_tests(nlohmann::json(R"([{"input": "1\n", "output": "2\n"}])"));  // JSON-encoded string
  ASSERT_EQ(io.io.size(), 1u);
  EXPECT_EQ(io.io[0].first, "1\n");
  EXPECT_THROW(reward::parse_code_tests(nlohmann::json::array()), InputError);
  EXPECT_THROW(reward::parse_code_tests(nlohmann::json::parse(R"([1, 2])")), InputError);
  EXPECT_THROW(reward::parse_code_tests(nlohmann::json::parse(R"(["assert 1", {"input": "", "output": ""}])")),
               InputError);
}

TEST(CodeOutputs, TrailingWhitespaceIsIgnoredOtherwiseExact) {
  EXPECT_TRUE(reward::outputs_match("1 2 \r\n3\n\n\n", "1 2\n3"));
  EXPECT_FALSE(reward::outputs_match("1  2\n", "1 2\n"));
  EXPECT_FALSE(reward::outputs_match("12\n", "1\n2\n"));
  EXPECT_TRUE(reward::outputs_match("", "\n"));
}

// The adversarial suite's limits, with a wall limit that survives a heavily loaded machine (these
// tests check scores, not limits).
config::SandboxConfig limits() {
  config::SandboxConfig c = small_limits();
  c.wall_time_s = 10.0;
  return c;
}

reward::RewardInput row(const std::string& completion, nlohmann::json tests) {
  reward::RewardInput r;
  r.completion = completion;
  r.reference = {{"tests", std::move(tests)}};
  return r;
}

TEST(CodeReward, ScoresAssertAndIoTestsEndToEnd) {
  config::CodeParams p;  // python, fraction
  reward::CodeReward fn(p, limits());
  const nlohmann::json asserts = {"assert add(1, 2) == 3", "assert add(2, 0) == 2", "assert add(-5, 5) == 0",
                                  "assert add('a', 'b') == 'ab'"};
  const nlohmann::json io = {{{"input", "3 4\n"}, {"output", "7\n"}}, {{"input", "10 -2\n"}, {"output", "8"}}};
  std::vector<reward::RewardInput> batch = {
      row("```python\ndef add(a, b):\n    return a + b\n```", asserts),                 // 4/4
      row("```python\ndef add(a, b):\n    return a - b\n```", asserts),                 // only add(2,0): 1/4
      row("I cannot solve this.", asserts),                                            // no code: 0
      row("```python\nimport sys\nsys.exit(0)\n```", asserts),                         // exits early: 0
      row("```python\na, b = map(int, input().split())\nprint(a + b)\n```", io),       // 2/2
      row("```python\nprint(7)\n```", io),                                             // 1/2
      row("```python\nwhile True: pass\n```", io),                                     // timeouts: 0
      row("```python\ndef add(a, b): return a + b\n```", nlohmann::json("not a list")),  // bad tests
  };
  auto d = fn.score_detailed(batch);
  ASSERT_EQ(d.size(), batch.size());
  const std::vector<float> want = {1.0f, 0.25f, 0.0f, 0.0f, 1.0f, 0.5f, 0.0f, 0.0f};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_FLOAT_EQ(d[i].reward, want[i]) << "row " << i << " problem=" << d[i].problem
                                          << " status=" << reward::status_name(d[i].status);
    EXPECT_FALSE(d[i].masked) << "row " << i << ": " << d[i].problem;
  }
  EXPECT_EQ(d[1].passed, 1);
  EXPECT_EQ(d[1].total, 4);
  EXPECT_EQ(reward::status_name(d[6].status), "timeout");
  EXPECT_TRUE(d[7].problem.find("bad tests") != std::string::npos) << d[7].problem;
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(d[i].problem, "") << "row " << i;

  // all_or_nothing turns the partial rows into 0.
  p.scoring = config::CodeScoring::ALL_OR_NOTHING;
  reward::CodeReward strict(p, limits());
  auto s = strict.score_batch({batch[0], batch[1], batch[5]});
  EXPECT_EQ(s.values, (std::vector<float>{1.0f, 0.0f, 0.0f}));
}

TEST(CodeReward, CppIoTestsCompileOncePerRow) {
  config::CodeParams p;
  p.language = CodeLanguage::CPP;
  reward::CodeReward fn(p, limits());
  const nlohmann::json io = {{{"input", "3 4\n"}, {"output", "7\n"}}, {{"input", "10 -2\n"}, {"output", "8\n"}},
                             {{"input", "0 0\n"}, {"output", "0\n"}}};
  auto d = fn.score_detailed({
      row("```cpp\n#include <cstdio>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);}\n```", io),
      row("```cpp\nint main( {\n```", io),  // does not compile
  });
  EXPECT_FLOAT_EQ(d[0].reward, 1.0f) << reward::status_name(d[0].status) << " " << d[0].problem;
  EXPECT_FLOAT_EQ(d[1].reward, 0.0f);
  EXPECT_FALSE(d[1].masked);
  EXPECT_EQ(reward::status_name(d[1].status), "failed");
  // Assert tests are Python-only: reported as a problem of the row, not a crash.
  auto bad = fn.score_detailed({row("```cpp\nint main(){}\n```", nlohmann::json{"assert f() == 1"})});
  EXPECT_NE(bad[0].problem.find("need language python"), std::string::npos);
}

TEST(CodeReward, SandboxFailureMasksTheRowInsteadOfRewardingZero) {
  // A program larger than the run's work directory cannot even be written: the sandbox failed,
  // not the program.
  config::SandboxConfig cfg = limits();
  cfg.work_dir_mb = 1;
  reward::CodeReward fn(config::CodeParams{}, cfg);
  const std::string huge = "```python\nx = '" + std::string(3 << 20, 'a') + "'\n```";
  auto d = fn.score_detailed({row(huge, nlohmann::json{"assert True"}),
                              row("```python\ndef f(): return 1\n```", nlohmann::json{"assert f() == 1"})});
  EXPECT_TRUE(d[0].masked);
  EXPECT_FLOAT_EQ(d[0].reward, 0.0f);
  EXPECT_NE(d[0].problem.find("sandbox error"), std::string::npos) << d[0].problem;
  EXPECT_FALSE(d[1].masked);
  EXPECT_FLOAT_EQ(d[1].reward, 1.0f);
  EXPECT_GE(fn.sandbox().sandbox_errors(), 1);
  auto s = fn.score_batch({row(huge, nlohmann::json{"assert True"})});
  EXPECT_EQ(s.masked[0], 1);
}

TEST(CodeReward, RegistryBuildsTheCodeKind) {
  config::RewardConfig all;
  all.sandbox = limits();
  config::RewardFunctionConfig e;
  e.name = config::RewardKind::CODE;
  auto fn = reward::make_reward_function(e, all);
  ASSERT_NE(fn, nullptr);
  EXPECT_EQ(fn->name(), "code");
  auto v = fn->score({row("```python\ndef f(x): return 2 * x\n```", nlohmann::json{"assert f(2) == 4", "assert f(0) == 1"})});
  EXPECT_EQ(v, std::vector<float>{0.5f});
}

TEST(CodeReward, MissingInterpreterIsAConfigError) {
  config::SandboxConfig cfg = small_limits();
  cfg.python = "python-does-not-exist";
  EXPECT_THROW(reward::CodeReward(config::CodeParams{}, cfg), InputError);
}

TEST(SandboxRunEach, LongTestListsRunInChunksInOrder) {
  reward::Sandbox sb(limits());
  reward::SandboxRequest req;
  req.source = "print(int(input()) * 3)\n";
  std::vector<std::string> ins;
  for (int i = 0; i < 40; ++i) ins.push_back(std::to_string(i) + "\n");  // more than one chunk of 32
  auto rs = sb.run_each(req, ins);
  ASSERT_EQ(rs.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(reward::status_name(rs[static_cast<size_t>(i)].status), "ok") << i;
    EXPECT_EQ(rs[static_cast<size_t>(i)].stdout_data, std::to_string(3 * i) + "\n");
  }
}

TEST(SandboxPool, RunsABatchOverlappedAndInOrder) {
  reward::Sandbox sb(limits());
  reward::SandboxPool pool(sb, 2);
  std::vector<reward::SandboxJob> jobs;
  for (int i = 0; i < 4; ++i) {
    reward::SandboxJob j;
    // Prints its start and end on the shared realtime clock (namespaces do not change it).
    j.request.source = "import time, sys\nt0 = time.time()\ntime.sleep(0.5)\nprint(int(sys.stdin.read()) * 2, t0, time.time())\n";
    j.stdins = {std::to_string(i)};
    jobs.push_back(j);
  }
  auto out = pool.run_batch(jobs);
  ASSERT_EQ(out.size(), 4u);
  std::vector<std::pair<double, double>> spans;
  for (int i = 0; i < 4; ++i) {
    std::istringstream is(out[static_cast<size_t>(i)].at(0).stdout_data);
    int v = -1;
    double a = 0, b = 0;
    is >> v >> a >> b;
    EXPECT_EQ(v, 2 * i);  // results come back in job order
    spans.emplace_back(a, b);
  }
  // With 2 workers some two runs overlap in time; run one after another, none would.
  bool overlap = false;
  for (size_t i = 0; i < spans.size(); ++i)
    for (size_t j = i + 1; j < spans.size(); ++j)
      overlap = overlap || (spans[i].first < spans[j].second && spans[j].first < spans[i].second);
  EXPECT_TRUE(overlap);
}

}  // namespace
}  // namespace grpo::test
