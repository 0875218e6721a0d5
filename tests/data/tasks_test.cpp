// Built-in task generators. Solutions are checked by an independent evaluator: Python's
// fractions.Fraction over the expression text (the venv's python), not by our own code.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <array>
#include <map>
#include <set>

#include "common/subprocess.h"
#include "grpo/data/tasks.h"

namespace grpo::data {
namespace {

// Evaluates each "expr" line exactly with Python Fractions; returns one "num/den" line each.
std::vector<std::string> python_eval(const std::vector<std::string>& exprs) {
  // Unique per process and call: ctest -j runs this suite's tests side by side, and a shared
  // file let one test read the other's expressions.
  static int calls = 0;
  auto dir = std::filesystem::temp_directory_path();
  std::string tag = std::to_string(::getpid()) + "_" + std::to_string(calls++);
  auto in = dir / ("grpo_countdown_exprs_" + tag + ".txt");
  {
    std::ofstream f(in);
    for (const auto& e : exprs) f << e << "\n";
  }
  std::string py =
      "import re,sys\nfrom fractions import Fraction as F\n"
      "for line in open(sys.argv[1]):\n"
      "  e=re.sub(r'(\\d+)', r'F(\\1)', line.strip())\n"
      "  v=eval(e)\n"
      "  print(f'{v.numerator}/{v.denominator}')\n";
  auto script = dir / ("grpo_countdown_eval_" + tag + ".py");
  std::ofstream(script) << py;
  auto r = grpo::testing::run_cmd(std::string(GRPO_PYTHON) + " " + script.string() + " " + in.string());
  EXPECT_EQ(r.rc, 0) << r.err;
  std::vector<std::string> out;
  std::istringstream ss(r.out);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

std::multiset<int64_t> numbers_in(const std::string& expr) {
  std::multiset<int64_t> out;
  for (size_t i = 0; i < expr.size();) {
    if (isdigit(static_cast<unsigned char>(expr[i]))) {
      size_t j = i;
      while (j < expr.size() && isdigit(static_cast<unsigned char>(expr[j]))) ++j;
      out.insert(std::stoll(expr.substr(i, j - i)));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

TEST(Countdown, SolverFindsValidSolutions) {
  config::CountdownTaskConfig cfg;
  auto rows = make_countdown(cfg, 60, 7);
  ASSERT_EQ(rows.size(), 60u);
  std::vector<std::string> exprs;
  for (const auto& r : rows) {
    std::string sol = r["solution"].get<std::string>();
    std::string expr = sol.substr(sol.find("<answer>") + 8);
    expr = expr.substr(0, expr.find("</answer>"));
    exprs.push_back(expr);
    auto nums = r["nums"].get<std::vector<int64_t>>();
    EXPECT_EQ(numbers_in(expr), std::multiset<int64_t>(nums.begin(), nums.end())) << expr;
  }
  auto values = python_eval(exprs);
  ASSERT_EQ(values.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(values[i], std::to_string(rows[i]["target"].get<int64_t>()) + "/1") << exprs[i];
}

TEST(Countdown, UnsolvableAndSmallCases) {
  // Hand-checked: from {1, 1} only 0, 1 and 2 are reachable.
  EXPECT_FALSE(solve_countdown({1, 1}, 5).has_value());
  EXPECT_TRUE(solve_countdown({1, 1}, 2).has_value());
  // 4 / (1 - 5/6) = 24 needs a non-integer intermediate.
  auto s = solve_countdown({4, 1, 5, 6}, 24);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(python_eval({*s})[0], "24/1") << *s;
}

TEST(Arithmetic, AnswersAndDeterminism) {
  config::ArithmeticTaskConfig cfg;
  cfg.min_digits = 1;
  cfg.max_digits = 3;
  cfg.operations = {"+", "-", "*"};
  auto a = make_arithmetic(cfg, 300, 11);
  auto b = make_arithmetic(cfg, 300, 11);
  auto c = make_arithmetic(cfg, 300, 12);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (const auto& r : a) {
    std::istringstream q(r["question"].get<std::string>().substr(8));  // after "What is "
    int64_t x, y;
    char op;
    q >> x >> op >> y;
    int64_t expect = op == '+' ? x + y : op == '-' ? x - y : x * y;
    EXPECT_EQ(r["answer"].get<std::string>(), std::to_string(expect)) << r.dump();
    EXPECT_NE(r["solution"].get<std::string>().find("<answer>" + std::to_string(expect) + "</answer>"), std::string::npos);
    EXPECT_LT(x, 1000);
    EXPECT_LT(y, 1000);
  }
  cfg.operations = {"^"};
  EXPECT_THROW(make_arithmetic(cfg, 1, 1), InputError);
}

// answer_format python: the program inside <answer>, run by Python itself, prints the row's
// answer and its stdin/stdout test expects exactly that.
TEST(Arithmetic, PythonAnswersPrintTheValue) {
  config::ArithmeticTaskConfig cfg;
  cfg.max_digits = 3;
  cfg.operations = {"+", "-", "*"};
  cfg.answer_format = config::ArithmeticAnswer::PYTHON;
  auto rows = make_arithmetic(cfg, 40, 5);
  auto dir = std::filesystem::temp_directory_path() / ("grpo_arith_py_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const auto& r : rows) {
    auto sol = r["solution"].get<std::string>();
    auto open = sol.find("<answer>\n```python\n"), close = sol.find("```\n</answer>");
    ASSERT_TRUE(open != std::string::npos && close != std::string::npos) << sol;
    auto program = sol.substr(open + 19, close - open - 19);
    std::ofstream(dir / "p.py") << program;
    auto run = grpo::testing::run_cmd(std::string(GRPO_PYTHON) + " " + (dir / "p.py").string());
    ASSERT_EQ(run.rc, 0) << run.err;
    EXPECT_EQ(run.out, r["answer"].get<std::string>() + "\n") << program;
    ASSERT_EQ(r["tests"].size(), 1u);
    EXPECT_EQ(r["tests"][0]["output"], r["answer"]);
    EXPECT_NE(r["prompt"].get<std::string>().find("```python"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(Tasks, SplitsAreDisjointAndWritten) {
  config::TaskConfig t;
  t.name = config::TaskName::ARITHMETIC;
  t.num_train = 500;
  t.num_eval = 100;
  auto dir = std::filesystem::temp_directory_path() / ("grpo_tasks_split_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  write_task_splits(t, (dir / "train.jsonl").string(), (dir / "eval.jsonl").string());
  std::set<std::string> eval;
  std::ifstream e(dir / "eval.jsonl"), tr(dir / "train.jsonl");
  int ne = 0, nt = 0;
  for (std::string line; std::getline(e, line); ++ne) eval.insert(nlohmann::json::parse(line)["prompt"]);
  for (std::string line; std::getline(tr, line); ++nt)
    EXPECT_FALSE(eval.count(nlohmann::json::parse(line)["prompt"])) << "held-out prompt in train: " << line;
  EXPECT_EQ(ne, 100);
  EXPECT_EQ(nt, 500);
  std::filesystem::remove_all(dir);
  t.name = config::TaskName::NONE;
  EXPECT_THROW(write_task_splits(t, "a", "b"), InputError);
}

// word_problems: held-out rows only from held-out templates, training rows never; each answer is
// the value (Python Fractions) of the last equation of its worked solution, whose operands occur
// in the question; every number stays within max_number.
TEST(WordProblems, HeldOutTemplatesAndAnswers) {
  config::TaskConfig t;
  t.name = config::TaskName::WORD_PROBLEMS;
  t.num_train = 1000;
  t.num_eval = 300;
  t.word_problems.max_number = 20;
  auto dir = std::filesystem::temp_directory_path() / ("grpo_tasks_wp_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  write_task_splits(t, (dir / "train.jsonl").string(), (dir / "eval.jsonl").string());
  std::set<int> train_templates, eval_templates;
  std::map<std::string, std::array<int, 2>> kinds;  // kind -> {train rows, held-out rows}
  std::vector<std::string> exprs, answers;
  for (const char* split : {"train.jsonl", "eval.jsonl"}) {
    std::ifstream f(dir / split);
    for (std::string line; std::getline(f, line);) {
      auto r = nlohmann::json::parse(line);
      int tpl = std::stoi(r["group"].get<std::string>().substr(std::string("word_problems/").size()));
      (std::string(split) == "eval.jsonl" ? eval_templates : train_templates).insert(tpl);
      std::string sol = r["solution"], q = r["question"];
      const char* kind = sol.find(" x ") != std::string::npos ? "product" : sol.find(". ") != std::string::npos && sol.find(". ") + 2 < sol.find("</think>") ? "two-step" : "one-step";
      kinds[kind][std::string(split) == "eval.jsonl" ? 1 : 0]++;
      std::string think = sol.substr(7, sol.find("</think>") - 7);  // "<think>" ... "</think>"
      size_t last = think.rfind(". ", think.size() - 2);
      std::string eq = last == std::string::npos ? think : think.substr(last + 2);
      std::string lhs = eq.substr(0, eq.find(" = "));
      for (int64_t v : numbers_in(lhs)) {
        EXPECT_LE(v, 20) << line;
        if (eq == think) EXPECT_NE(q.find(std::to_string(v)), std::string::npos) << "operand " << v << " not in: " << q;
      }
      EXPECT_LE(std::stoll(r["answer"].get<std::string>()), 20) << line;
      for (size_t p; (p = lhs.find(" x ")) != std::string::npos;) lhs.replace(p, 3, " * ");
      exprs.push_back(lhs);
      answers.push_back(r["answer"].get<std::string>() + "/1");
    }
  }
  EXPECT_EQ(python_eval(exprs), answers);
  for (int tpl : eval_templates) EXPECT_EQ(train_templates.count(tpl), 0u) << "template " << tpl << " in both splits";
  // Every kind of problem (one step, two steps, a product) is in both splits: otherwise held-out
  // accuracy would measure an operation never trained on, not an unseen phrasing.
  for (const auto& [kind, count] : kinds) {
    EXPECT_GT(count[0], 0) << kind << " problems missing from training";
    EXPECT_GT(count[1], 0) << kind << " problems missing from the held-out split";
  }
  EXPECT_EQ(kinds.size(), 3u);
  EXPECT_EQ(eval_templates.size(), 12u);
  EXPECT_EQ(train_templates.size(), 24u);
  std::filesystem::remove_all(dir);
  config::WordProblemsTaskConfig bad;
  bad.max_number = 3;
  EXPECT_THROW(make_word_problems(bad, 1, 0, false), InputError);
}

}  // namespace
}  // namespace grpo::data
