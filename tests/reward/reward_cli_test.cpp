// `grpo reward` run as a subprocess (the built binary, GRPO_BIN) on small files.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

struct ProcessResult {
  int rc = -1;
  std::string output;  // stdout and stderr
};

ProcessResult run(const std::string& args) {
  ProcessResult r;
  std::string cmd = std::string(GRPO_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class RewardCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("grpo_reward_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    write("cfg.yaml",
          "reward:\n  functions:\n    - {name: format, weight: 0.5}\n    - {name: math_answer, weight: 1.0}\n"
          "    - {name: countdown, weight: 2.0}\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(RewardCli, ScoresEachRowAndPrintsSummary) {
  std::string in = write("in.jsonl",
                         R"({"prompt": "2+3?", "completion": "<think>add</think><answer>\\boxed{5}</answer>", "answer": "5"})" "\n"
                         R"({"prompt": "2+3?", "completion": "\\boxed{6}", "answer": "5"})" "\n"
                         "\n"
                         R"({"completion": "<think>t</think><answer>(6 - 2) * 6</answer>", "answer": "24", "nums": [2, 6, 6], "target": 24})" "\n"
                         R"({"completion": [{"role": "assistant", "content": "\\boxed{1}"}], "answer": "\\frac{", "nums": [1], "target": 1})" "\n");
  std::string out = (dir_ / "out.jsonl").string();
  ProcessResult r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + in + " --out " + out);
  ASSERT_EQ(r.rc, 0) << r.output;
  std::ifstream f(out);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(f, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 4u);
  // Hand-checked: row 0 format 1, math 1, countdown 0 (no equation in the answer: "\boxed{5}" is
  // an equation) -> 0.5 + 1 = 1.5; row 1: everything 0 -> 0; row 2: format 1, math 1 (24),
  // countdown 1 -> 0.5 + 1 + 2 = 3.5; row 3: math reference unparseable (0, reported), countdown 0.
  EXPECT_EQ(rows[0]["rewards"]["format"], 1.0);
  EXPECT_EQ(rows[0]["rewards"]["math_answer"], 1.0);
  EXPECT_EQ(rows[0]["rewards"]["countdown"], 0.0);
  EXPECT_DOUBLE_EQ(rows[0]["reward"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(rows[1]["reward"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(rows[2]["reward"].get<double>(), 3.5);
  EXPECT_EQ(rows[2]["nums"], nlohmann::json::array({2, 6, 6}));  // the input row is kept
  EXPECT_DOUBLE_EQ(rows[3]["reward"].get<double>(), 0.0);
  ASSERT_TRUE(rows[3].contains("reward_problems"));
  EXPECT_EQ(rows[3]["reward_problems"][0]["function"], "math_answer");
  // Row 0 has no nums/target: countdown reports it.
  ASSERT_TRUE(rows[0].contains("reward_problems"));
  EXPECT_EQ(rows[0]["reward_problems"][0]["function"], "countdown");
  // Summary: math_answer mean over 4 rows = (1 + 0 + 1 + 0) / 4 = 0.5.
  EXPECT_NE(r.output.find("math_answer"), std::string::npos) << r.output;
  std::istringstream lines(r.output);
  bool found = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("math_answer", 0) != 0) continue;
    std::istringstream cols(line);
    std::string name;
    double weight, mean, min, max;
    size_t count, problems;
    cols >> name >> weight >> mean >> min >> max >> count >> problems;
    EXPECT_DOUBLE_EQ(weight, 1.0);
    EXPECT_DOUBLE_EQ(mean, 0.5);
    EXPECT_EQ(count, 4u);
    EXPECT_EQ(problems, 1u);
    found = true;
  }
  EXPECT_TRUE(found) << r.output;
}

TEST_F(RewardCli, MalformedJsonNamesFileAndLine) {
  std::string in = write("bad.jsonl", "{\"completion\": \"a\", \"answer\": \"1\"}\n\n{\"completion\": \"b\", \n");
  ProcessResult r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + in);
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("bad.jsonl:3: invalid JSON"), std::string::npos) << r.output;
}

TEST_F(RewardCli, MissingCompletionNamesFileAndLine) {
  std::string in = write("nocomp.jsonl", "{\"completion\": \"a\"}\n{\"prompt\": \"p\", \"answer\": \"1\"}\n");
  ProcessResult r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + in);
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("nocomp.jsonl:2: missing field \"completion\""), std::string::npos) << r.output;
}

// As grpo generate does for an empty prompts file: nothing to score is an error, not 0 rows and exit 0.
TEST_F(RewardCli, EmptyInputIsAnError) {
  for (const char* text : {"", "\n  \n\t\n"}) {
    std::string in = write("empty.jsonl", text);
    std::string out = (dir_ / "scored.jsonl").string();
    ProcessResult r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + in + " --out " + out);
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find("grpo: error: " + in + ": no rows to score (the file is empty or has only blank lines)"),
              std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST_F(RewardCli, NonUtf8ByteIsEscaped) {
  std::string in = write("latin1.jsonl", "{\"completion\": \"caf\xe9\"}\n");
  ProcessResult r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + in);
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("latin1.jsonl:1: invalid JSON"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\\xe9"), std::string::npos) << r.output;
  for (unsigned char c : r.output) EXPECT_LT(c, 0x80) << r.output;
}

TEST_F(RewardCli, NonObjectAndMissingFile) {
  std::string in = write("arr.jsonl", "[1, 2]\n");
  ProcessResult r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + in);
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("arr.jsonl:1: each line must be a JSON object"), std::string::npos) << r.output;
  r = run("reward " + (dir_ / "cfg.yaml").string() + " --input " + (dir_ / "nope.jsonl").string());
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("nope.jsonl: cannot open"), std::string::npos) << r.output;
}

}  // namespace
