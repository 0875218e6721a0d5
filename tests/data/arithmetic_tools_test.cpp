// task.arithmetic.tool_fraction: the SFT cold start of tool-integrated GRPO (issue 21). A share of
// the solutions compute with one python call and carry its result as the engine injects it.
#include <gtest/gtest.h>

#include <regex>

#include "grpo/data/tasks.h"
#include "grpo/util/error.h"

namespace grpo::data {
namespace {

TEST(ArithmeticTools, ShareOfSolutionsUseTheToolAndProblemsDoNotChange) {
  config::ArithmeticTaskConfig plain;
  plain.min_digits = 3, plain.max_digits = 4, plain.operations = {"*", "+"};
  auto tools = plain;
  tools.tool_fraction = 0.25;
  const auto a = make_arithmetic(plain, 400, 99), b = make_arithmetic(tools, 400, 99);
  ASSERT_EQ(a.size(), b.size());
  const std::regex call(R"(^<think>```python\nprint\((\d+) ([*+]) (\d+)\)\n```\n<output>\n(\d+)\n</output>\n</think>\n<answer>(\d+)</answer>$)");
  int used = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["prompt"], b[i]["prompt"]) << i;
    EXPECT_EQ(a[i]["answer"], b[i]["answer"]) << i;
    const std::string sol = b[i]["solution"];
    if (sol == a[i]["solution"].get<std::string>()) continue;
    ++used;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(sol, m, call)) << sol;
    // The printed value is the expression's, computed here from the call itself.
    const long long x = std::stoll(m[1]), y = std::stoll(m[3]);
    const long long v = m[2] == "*" ? x * y : x + y;
    EXPECT_EQ(std::stoll(m[4]), v) << sol;
    EXPECT_EQ(std::stoll(m[5]), v) << sol;
    EXPECT_EQ(b[i]["answer"].get<std::string>(), std::to_string(v));
  }
  // Binomial(400, 0.25): mean 100, sd 8.7; 70..130 is beyond 3.4 sd.
  EXPECT_GT(used, 70);
  EXPECT_LT(used, 130);
  config::ArithmeticTaskConfig py = tools;
  py.answer_format = config::ArithmeticAnswer::PYTHON;
  EXPECT_THROW(make_arithmetic(py, 4, 1), InputError);
}

}  // namespace
}  // namespace grpo::data
