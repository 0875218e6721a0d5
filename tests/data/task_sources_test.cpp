// gsm8k / humaneval tasks: splits of the JSONL converted at set-up time (scripts/fetch_assets.sh).
// Small hand-written sources check the row format, determinism, disjointness by group and the
// errors; the real converted files, when present, are split with the sizes the configs use.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "common/env_guard.h"
#include "grpo/data/tasks.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::data {
namespace {

namespace sfs = std::filesystem;

using grpo::testing::EnvGuard;

std::vector<nlohmann::json> read_jsonl(const sfs::path& p) {
  std::vector<nlohmann::json> rows;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

struct TempDir {
  sfs::path path;
  explicit TempDir(const std::string& name) : path(sfs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    sfs::remove_all(path);
    sfs::create_directories(path);
  }
  ~TempDir() { sfs::remove_all(path); }
};

// 10 templates x 3 instances; template k's instance i asks for k + i and answers 2k + i.
std::string gsm8k_source() {
  std::string s;
  for (int k = 0; k < 10; ++k)
    for (int i = 0; i < 3; ++i)
      s += nlohmann::json{{"question", "Tom has " + std::to_string(k) + " apples and gets " + std::to_string(k + i) +
                                           " more. How many now?"},
                          {"answer", std::to_string(2 * k + i)},
                          {"solution", "He has " + std::to_string(k) + "+" + std::to_string(k + i) + "=<<" +
                                           std::to_string(k) + "+" + std::to_string(k + i) + "=" +
                                           std::to_string(2 * k + i) + ">>" + std::to_string(2 * k + i) +
                                           " apples.\n#### " + std::to_string(2 * k + i)},
                          {"group", "g" + std::to_string(k)},
                          {"kind", i == 0 ? "original" : "symbolic"}}
               .dump() +
           "\n";
  return s;
}

config::TaskConfig gsm8k_task(const std::string& source, int num_train, int num_eval, int64_t seed = 7) {
  config::TaskConfig t;
  t.name = config::TaskName::GSM8K;
  t.source = source;
  t.num_train = num_train;
  t.num_eval = num_eval;
  t.seed = seed;
  return t;
}

TEST(TaskSources, Gsm8kSplitIsDeterministicDisjointByGroupAndFormatted) {
  TempDir d("grpo_task_sources_gsm8k");
  fs::atomic_write((d.path / "src.jsonl").string(), gsm8k_source());
  auto t = gsm8k_task((d.path / "src.jsonl").string(), 20, 7);
  write_task_splits(t, (d.path / "a/train.jsonl").string(), (d.path / "a/eval.jsonl").string());
  write_task_splits(t, (d.path / "b/train.jsonl").string(), (d.path / "b/eval.jsonl").string());
  EXPECT_EQ(fs::read_file((d.path / "a/train.jsonl").string()), fs::read_file((d.path / "b/train.jsonl").string()));
  EXPECT_EQ(fs::read_file((d.path / "a/eval.jsonl").string()), fs::read_file((d.path / "b/eval.jsonl").string()));

  auto train = read_jsonl(d.path / "a/train.jsonl"), eval = read_jsonl(d.path / "a/eval.jsonl");
  ASSERT_EQ(train.size(), 20u);
  ASSERT_EQ(eval.size(), 7u);
  std::set<std::string> eval_groups, train_groups;
  for (const auto& r : eval) eval_groups.insert(r["group"]);
  for (const auto& r : train) train_groups.insert(r["group"]);
  // 7 held-out rows take three whole templates (the third one partly): those never train.
  EXPECT_EQ(eval_groups.size(), 3u);
  for (const auto& g : train_groups) EXPECT_FALSE(eval_groups.count(g)) << "template " << g << " on both sides";
  for (const auto& r : train) {
    std::string q = r["question"];
    EXPECT_EQ(r["prompt"].get<std::string>(), q + kR1Instruction);
    // The answer is the sum of the two numbers in the question (independent of the converter).
    int a = std::stoi(q.substr(8)), b = std::stoi(q.substr(q.find("gets ") + 5));
    EXPECT_EQ(r["answer"].get<std::string>(), std::to_string(a + b)) << q;
    // The R1 solution keeps the text, drops <<calc>> annotations and the #### line.
    std::string want = "<think>He has " + std::to_string(a) + "+" + std::to_string(b) + "=" + std::to_string(a + b) +
                       " apples.</think>\n<answer>" + std::to_string(a + b) + "</answer>";
    EXPECT_EQ(r["solution"].get<std::string>(), want);
  }

  // Another seed holds out other templates.
  auto t2 = gsm8k_task(t.source, 20, 7, 8);
  write_task_splits(t2, (d.path / "c/train.jsonl").string(), (d.path / "c/eval.jsonl").string());
  EXPECT_NE(fs::read_file((d.path / "c/eval.jsonl").string()), fs::read_file((d.path / "a/eval.jsonl").string()));
}

TEST(TaskSources, Gsm8kTooFewRowsIsAClearError) {
  TempDir d("grpo_task_sources_small");
  fs::atomic_write((d.path / "src.jsonl").string(), gsm8k_source());
  // 30 rows; holding out 7 leaves at most 23 (whole templates: 21).
  auto t = gsm8k_task((d.path / "src.jsonl").string(), 25, 7);
  try {
    write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("lower task.num_train"), std::string::npos) << e.what();
  }
  EXPECT_THROW(write_task_splits(gsm8k_task(t.source, 1, 31), "x", "y"), InputError);
}

TEST(TaskSources, MissingOrMalformedSourceNamesTheFix) {
  TempDir d("grpo_task_sources_bad");
  auto t = gsm8k_task((d.path / "nope.jsonl").string(), 1, 1);
  try {
    write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("nope.jsonl"), std::string::npos) << m;
    EXPECT_NE(m.find("scripts/setup.sh"), std::string::npos) << m;
  }
  fs::atomic_write((d.path / "bad.jsonl").string(), "{\"question\": \"q\", \"answer\": \"1\"}\n{\"question\": \"q2\"}\n");
  t.source = (d.path / "bad.jsonl").string();
  try {
    write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.jsonl:2"), std::string::npos) << m;
    EXPECT_NE(m.find("'answer'"), std::string::npos) << m;
  }
  fs::atomic_write((d.path / "bad.jsonl").string(), "{\"question\": \"q\", \"answer\": \"1\"}\nnot json\n");
  EXPECT_THROW(write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string()), InputError);
  // No source given: the default location under GRPO_DATA_DIR.
  EnvGuard env;
  env.set("GRPO_DATA_DIR", d.path.c_str());
  EXPECT_EQ(default_task_source(config::TaskName::HUMANEVAL), (d.path / "humaneval/humaneval.jsonl").string());
  t.source.clear();
  try {
    write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find((d.path / "gsm8k/gsm8k.jsonl").string()), std::string::npos) << e.what();
  }
}

TEST(TaskSources, HumanEvalRowsCarryCodePromptAndTests) {
  TempDir d("grpo_task_sources_he");
  std::string src;
  for (int k = 0; k < 6; ++k)
    src += nlohmann::json{{"task_id", "HumanEval/" + std::to_string(k)},
                          {"prompt", "def f" + std::to_string(k) + "(x):\n    \"\"\"Add " + std::to_string(k) + ".\"\"\"\n"},
                          {"entry_point", "f" + std::to_string(k)},
                          {"canonical_solution", "    return x + " + std::to_string(k) + "\n"},
                          {"tests", {"assert f" + std::to_string(k) + "(1) == " + std::to_string(k + 1)}}}
               .dump() +
           "\n";
  fs::atomic_write((d.path / "he.jsonl").string(), src);
  config::TaskConfig t;
  t.name = config::TaskName::HUMANEVAL;
  t.source = (d.path / "he.jsonl").string();
  t.num_train = 4;
  t.num_eval = 2;
  write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string());
  auto train = read_jsonl(d.path / "train.jsonl"), eval = read_jsonl(d.path / "eval.jsonl");
  ASSERT_EQ(train.size(), 4u);
  ASSERT_EQ(eval.size(), 2u);
  std::set<std::string> ids;
  for (const auto& r : eval) ids.insert(r["task_id"]);
  for (const auto& r : train) {
    EXPECT_FALSE(ids.count(r["task_id"])) << r["task_id"];
    ids.insert(r["task_id"]);
  }
  EXPECT_EQ(ids.size(), 6u);
  for (const auto& r : train) {
    std::string k = r["task_id"].get<std::string>().substr(10);
    std::string code = "def f" + k + "(x):\n    \"\"\"Add " + k + ".\"\"\"\n";
    EXPECT_EQ(r["prompt"].get<std::string>(), std::string(kCodeInstruction) + "```python\n" + code + "```");
    EXPECT_EQ(r["tests"], nlohmann::json::array({"assert f" + k + "(1) == " + std::to_string(std::stoi(k) + 1)}));
    EXPECT_EQ(r["solution"].get<std::string>(), "```python\n" + code + "    return x + " + k + "\n```");
  }
}

// The real converted files (skipped when set-up has not fetched them).
TEST(TaskSources, ConvertedFilesSplit) {
  for (auto name : {config::TaskName::GSM8K, config::TaskName::HUMANEVAL}) {
    std::string src = default_task_source(name);
    if (!sfs::exists(src)) GTEST_SKIP() << src << " not found: run scripts/fetch_assets.sh";
    TempDir d("grpo_task_sources_real");
    config::TaskConfig t;
    t.name = name;
    t.num_train = name == config::TaskName::GSM8K ? 800 : 130;
    t.num_eval = name == config::TaskName::GSM8K ? 100 : 34;  // 164 HumanEval problems in all
    write_task_splits(t, (d.path / "train.jsonl").string(), (d.path / "eval.jsonl").string());
    auto train = read_jsonl(d.path / "train.jsonl"), eval = read_jsonl(d.path / "eval.jsonl");
    EXPECT_EQ(train.size(), size_t(t.num_train));
    EXPECT_EQ(eval.size(), size_t(t.num_eval));
    std::set<std::string> held;
    const char* key = name == config::TaskName::GSM8K ? "group" : "task_id";
    for (const auto& r : eval) held.insert(r[key]);
    for (const auto& r : train) EXPECT_FALSE(held.count(r[key])) << r[key];
  }
}

}  // namespace
}  // namespace grpo::data
