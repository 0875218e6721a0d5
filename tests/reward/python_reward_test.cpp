// The `python` reward: TRL's documented reward functions give the same numbers under `grpo reward`
// as when Python calls them directly; None masks; every way a user function can misbehave gives a
// clear error with masked rows and leaves nothing running.
#include <gtest/gtest.h>
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "grpo/reward/python_reward.h"

namespace {

namespace fs = std::filesystem;
using grpo::reward::PythonReward;
using grpo::reward::RewardInput;
using grpo::reward::RewardScores;

const std::string kRewards = std::string(GRPO_SOURCE_DIR) + "/tests/reward/python_rewards";

grpo::config::SandboxConfig test_sandbox() {
  grpo::config::SandboxConfig c;
  c.max_processes = 16;
  return c;
}

class PythonRewardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("grpo_python_reward_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  // A copy of misbehaving.py under a name unique to this test, so that its worker's processes can
  // be found on the host by command line.
  std::unique_ptr<PythonReward> misbehaving(const std::string& function, double timeout_s = 20) {
    std::ifstream in(kRewards + "/misbehaving.py");
    std::stringstream ss;
    ss << in.rdbuf();
    marker_ = "misbehaving_" + std::to_string(::getpid()) + "_" + function + ".py";
    grpo::config::PythonParams p;
    p.file = write(marker_, ss.str());
    p.function = function;
    p.timeout_s = timeout_s;
    p.memory_mb = 1024;
    return std::make_unique<PythonReward>(p, test_sandbox());
  }
  // Processes on the host whose command line names this test's file (the worker and its children).
  int processes_named_marker() const {
    int n = 0;
    DIR* d = opendir("/proc");
    while (dirent* e = d ? readdir(d) : nullptr) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline");
      std::string cmd((std::istreambuf_iterator<char>(f)), {});
      if (cmd.find(marker_) != std::string::npos) ++n;
    }
    if (d) closedir(d);
    return n;
  }
  // The kernel tears the PID namespace down asynchronously: wait up to 5 s for it.
  bool nothing_left_running() const {
    for (int i = 0; i < 100; ++i) {
      if (processes_named_marker() == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  fs::path dir_;
  std::string marker_;
};

std::vector<RewardInput> rows(std::initializer_list<const char*> completions) {
  std::vector<RewardInput> v;
  for (const char* c : completions) v.push_back({"prompt", c, nlohmann::json::object(), 0});
  return v;
}

// The check every failure must pass: all rows masked, one message naming the file, the function
// and `what`; the next good batch is scored by a fresh worker; nothing of the old one survives.
void expect_failed_batch(const RewardScores& s, const std::string& file, const std::string& fn, const std::string& what) {
  ASSERT_EQ(s.size(), 2u);
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s.masked[i], 1) << i;
    EXPECT_EQ(s.values[i], 0.0f) << i;
    EXPECT_NE(s.problems[i].find(file), std::string::npos) << s.problems[i];
    EXPECT_NE(s.problems[i].find(fn), std::string::npos) << s.problems[i];
    EXPECT_NE(s.problems[i].find(what), std::string::npos) << s.problems[i];
  }
  EXPECT_EQ(s.counters.at("batch_errors"), 1.0);
}

TEST(PythonRewardRequest, StandardAndConversationalFormatsAndColumns) {
  std::vector<RewardInput> std_rows = {{"What is 2+2?", "4", {{"answer", "4"}, {"level", 1}}, 1},
                                       {"What is 3+3?", "6", {{"answer", "6"}}, 1}};
  auto req = grpo::reward::python_reward_request(std_rows);
  EXPECT_EQ(req["prompts"], nlohmann::json({"What is 2+2?", "What is 3+3?"}));
  EXPECT_EQ(req["completions"], nlohmann::json({"4", "6"}));
  EXPECT_EQ(req["columns"]["answer"], nlohmann::json({"4", "6"}));
  EXPECT_EQ(req["columns"]["level"], nlohmann::json({1, nullptr}));  // TRL passes a column per row
  EXPECT_TRUE(req["completion_ids"].is_null());
  EXPECT_FALSE(req["columns"].contains("prompt"));

  nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "What is 2+2?"}}});
  std::vector<RewardInput> chat = {{"rendered", "4", {{"prompt", msgs}, {"completion_ids", {5, 6}}}, 2}};
  req = grpo::reward::python_reward_request(chat);
  EXPECT_EQ(req["prompts"], nlohmann::json::array({msgs}));
  EXPECT_EQ(req["completions"], nlohmann::json::parse(R"([[{"role": "assistant", "content": "4"}]])"));
  EXPECT_EQ(req["completion_ids"], nlohmann::json::parse("[[5, 6]]"));
}

TEST_F(PythonRewardTest, PersistentWorkerScoresBatchesAndColumns) {
  auto fn = misbehaving("columns_and_state");
  std::vector<RewardInput> batch = {{"p", "a", {{"answer", 2}}, 0}, {"p", "b", {{"answer", "3.5"}}, 0}};
  for (int i = 0; i < 3; ++i) {
    auto s = fn->score_batch(batch);
    EXPECT_EQ(s.values, (std::vector<float>{2.0f, 3.5f}));
    EXPECT_EQ(s.masked, (std::vector<uint8_t>{0, 0}));
  }
  EXPECT_EQ(fn->workers_started(), 1);  // one worker served every batch
  EXPECT_EQ(fn->name(), "columns_and_state");
  // Conversational rows: the function sees message lists.
  nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "q"}}});
  auto s = fn->score_batch({{"q", "a", {{"answer", 1}, {"prompt", msgs}}, 0}});
  EXPECT_EQ(s.values, (std::vector<float>{101.0f}));
  fn.reset();
  EXPECT_TRUE(nothing_left_running());
}

TEST_F(PythonRewardTest, NoneMasksOnlyItsRow) {
  auto fn = misbehaving("skip_some");
  auto s = fn->score_batch(rows({"keep", "skip me", "keep"}));
  EXPECT_EQ(s.masked, (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(s.values, (std::vector<float>{1.0f, 0.0f, 1.0f}));
  EXPECT_NE(s.problems[1].find("None"), std::string::npos) << s.problems[1];
  EXPECT_TRUE(s.problems[0].empty());
}

TEST_F(PythonRewardTest, NanMasksItsRowNeverZero) {
  auto fn = misbehaving("nan_for_first");
  auto s = fn->score_batch(rows({"a", "b"}));
  EXPECT_EQ(s.masked, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(s.values[1], 0.5f);
  EXPECT_NE(s.problems[0].find("nan"), std::string::npos) << s.problems[0];
}

TEST_F(PythonRewardTest, ExceptionWrongLengthGarbageExitEachFailTheBatchAndRestart) {
  struct Case {
    const char* fn;
    const char* what;
  };
  for (Case c : {Case{"raises", "ZeroDivisionError"}, Case{"wrong_length", "returned 3 values for 2 completions"},
                 Case{"not_numbers", "element 0 is str"}, Case{"exits", "exited with code 3"}}) {
    SCOPED_TRACE(c.fn);
    auto fn = misbehaving(c.fn);
    expect_failed_batch(fn->score_batch(rows({"a", "b"})), marker_, c.fn, c.what);
    EXPECT_TRUE(nothing_left_running());
    // The next batch gets a fresh worker (and fails the same way: the function is still broken).
    expect_failed_batch(fn->score_batch(rows({"a", "b"})), marker_, c.fn, c.what);
    EXPECT_EQ(fn->workers_started(), 2);
  }
}

TEST_F(PythonRewardTest, InfiniteLoopTimesOutAndLeavesNothingRunning) {
  auto fn = misbehaving("loops_forever", 1.5);
  auto t0 = std::chrono::steady_clock::now();
  expect_failed_batch(fn->score_batch(rows({"a", "b"})), marker_, "loops_forever", "no reply within 1.5 s");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_TRUE(nothing_left_running());
}

TEST_F(PythonRewardTest, ForkBombFailsTheBatchAndLeavesNothingRunning) {
  auto fn = misbehaving("fork_bomb", 10);
  auto s = fn->score_batch(rows({"a", "b"}));
  EXPECT_EQ(s.masked, (std::vector<uint8_t>{1, 1}));
  EXPECT_NE(s.problems[0].find("fork_bomb"), std::string::npos) << s.problems[0];
  fn.reset();
  EXPECT_TRUE(nothing_left_running());
}

TEST_F(PythonRewardTest, HundredMegabytePrintStopsTheWorker) {
  auto fn = misbehaving("prints_100mb");
  expect_failed_batch(fn->score_batch(rows({"a", "b"})), marker_, "prints_100mb", "printed more than 64 MiB");
  EXPECT_TRUE(nothing_left_running());
}

TEST_F(PythonRewardTest, MissingFileOrFunctionIsAConfigError) {
  grpo::config::PythonParams p;
  p.file = (dir_ / "nope.py").string();
  p.function = "f";
  EXPECT_THROW(PythonReward(p, test_sandbox()), grpo::InputError);
  p.file = write("r.py", "x = 1\n");
  p.function = "missing";
  PythonReward fn(p, test_sandbox());
  auto s = fn.score_batch(rows({"a", "b"}));
  EXPECT_EQ(s.masked, (std::vector<uint8_t>{1, 1}));
  EXPECT_NE(s.problems[0].find("defines no function 'missing'"), std::string::npos) << s.problems[0];
}

// TRL's three documented examples under `grpo reward`, against the same functions called directly
// by Python (the TRL way: keyword arguments built from the same rows).
TEST_F(PythonRewardTest, TrlExamplesMatchDirectPythonCallsUnderGrpoReward) {
  std::string cfg = write("cfg.yaml", "reward:\n  functions:\n"
                                      "    - {name: python, file: " + kRewards + "/trl_length.py, function: reward_func}\n"
                                      "    - {name: python, file: " + kRewards + "/trl_reference.py, function: reward_func}\n");
  std::string chat_cfg = write("chat.yaml", "reward:\n  functions:\n"
                                            "    - {name: python, file: " + kRewards + "/trl_format.py, function: format_reward_func}\n"
                                            "    - {name: python, file: " + kRewards + "/trl_length.py, function: reward_func}\n");
  std::string std_rows = write("std.jsonl",
      R"({"prompt": "2+2?", "completion": "The answer is \\boxed{4}", "ground_truth": "4", "completion_ids": [1, 2, 3]})" "\n"
      R"({"prompt": "3+3?", "completion": "\\boxed{7} or \\boxed{6}", "ground_truth": "6", "completion_ids": [4]})" "\n"
      R"({"prompt": "1+1?", "completion": "two", "ground_truth": "2", "completion_ids": [5, 6, 7, 8, 9]})" "\n");
  std::string chat_rows = write("chat.jsonl",
      R"({"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "<think>add</think><answer>4</answer>"}], "completion_ids": [1, 2]})" "\n"
      R"({"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "<think>add</think> <answer>4</answer>"}], "completion_ids": [1, 2, 3, 4]})" "\n"
      R"({"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}], "completion_ids": [3]})" "\n");
  // Python, directly: each function with TRL's keyword arguments from the same rows.
  std::string direct = write("direct.py", R"(import importlib.util, json, sys
def load(path, name):
    spec = importlib.util.spec_from_file_location("m" + str(abs(hash(path))), path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return getattr(m, name)
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = []
for path, name in zip(sys.argv[2::2], sys.argv[3::2]):
    kw = {k: [r.get(k) for r in rows] for k in rows[0] if k not in ("prompt", "completion", "completion_ids")}
    out.append(load(path, name)(prompts=[r["prompt"] for r in rows], completions=[r["completion"] for r in rows],
                                completion_ids=[r["completion_ids"] for r in rows], trainer_state=None, **kw))
print(json.dumps(out))
)");
  struct Run {
    std::string cfg, rows;
    std::vector<std::pair<std::string, std::string>> fns;  // file, function (in config order)
    std::vector<std::string> names;                        // as grpo logs them
  };
  for (const Run& r : {Run{cfg, std_rows, {{"trl_length.py", "reward_func"}, {"trl_reference.py", "reward_func"}},
                           {"reward_func", "reward_func_2"}},
                       Run{chat_cfg, chat_rows, {{"trl_format.py", "format_reward_func"}, {"trl_length.py", "reward_func"}},
                           {"format_reward_func", "reward_func"}}}) {
    std::string args = direct + " " + r.rows;
    for (const auto& [f, n] : r.fns) args += " " + kRewards + "/" + f + " " + n;
    auto py = grpo::testing::run_cmd("python3 " + args);
    ASSERT_EQ(py.rc, 0) << py.err;
    auto expected = nlohmann::json::parse(py.out);
    std::string out = (dir_ / "out.jsonl").string();
    auto res = grpo::testing::run_grpo("reward " + r.cfg + " --input " + r.rows + " --out " + out);
    ASSERT_EQ(res.rc, 0) << res.out << res.err;
    std::ifstream in(out);
    std::string line;
    for (size_t i = 0; std::getline(in, line); ++i) {
      auto row = nlohmann::json::parse(line);
      for (size_t f = 0; f < r.names.size(); ++f)
        EXPECT_EQ(row["rewards"][r.names[f]].get<double>(), expected[f][i].get<double>())
            << r.rows << " row " << i << " " << r.names[f];
      EXPECT_FALSE(row.contains("reward_masked")) << line;
    }
  }
  // The numbers are not all alike (the comparison above could not pass by accident).
  auto py = grpo::testing::run_cmd("python3 " + direct + " " + std_rows + " " + kRewards + "/trl_reference.py reward_func");
  EXPECT_EQ(nlohmann::json::parse(py.out), nlohmann::json::parse("[[1.0, 0.0, 0.0]]"));
}

}  // namespace
