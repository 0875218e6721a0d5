// `grpo generate` end to end: a new tiny model from the config, the committed Qwen2-style test
// tokenizer, ChatML prompts; output shape and the exit codes of bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/subprocess.h"

namespace {

namespace fs = std::filesystem;

struct GenerateCli : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("grpo_generate_test_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    write("cfg.yaml",
          "model:\n  hidden_size: 32\n  intermediate_size: 64\n  num_hidden_layers: 2\n  num_attention_heads: 2\n"
          "  num_key_value_heads: 1\n  max_position_embeddings: 1024\n"
          "tokenizer:\n  path: " GRPO_SOURCE_DIR "/tests/tokenizer/data/qwen2_style/tokenizer.json\n"
          "  chat_template: chatml\n"
          "rollout:\n  max_completion_length: 6\n  temperature: 0.9\n");
    write("prompts.jsonl",
          "{\"prompt\": \"What is 2+2?\"}\n"
          "\n"
          "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}]}\n");
  }
  void TearDown() override { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; }
  std::string p(const std::string& name) const { return (dir / name).string(); }
  grpo::testing::CmdResult gen(const std::string& prompts, const std::string& extra = "") {
    return grpo::testing::run_grpo("generate " + p("cfg.yaml") + " --prompts " + p(prompts) + " --out " +
                                   p("out.jsonl") + " " + extra);
  }
};

}  // namespace

TEST_F(GenerateCli, WritesGCompletionsPerPromptAsJsonl) {
  auto r = gen("prompts.jsonl", "-n 3 --seed 5");
  ASSERT_EQ(r.rc, 0) << r.err;
  std::ifstream in(p("out.jsonl"));
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 6u);
  for (size_t k = 0; k < rows.size(); ++k) {
    EXPECT_EQ(rows[k]["prompt_index"], static_cast<int>(k / 3));
    EXPECT_EQ(rows[k]["generation"], static_cast<int>(k % 3));
    EXPECT_EQ(rows[k]["token_ids"].size(), rows[k]["logprobs"].size());
    EXPECT_LE(rows[k]["completion_length"].get<int>(), 6);
  }
  // Rendered with ChatML: the system turn of the second record comes first, then the generation prompt.
  EXPECT_EQ(rows[3]["prompt"], "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                               "<|im_start|>assistant\n");
  // Same seed, same file.
  std::stringstream first;
  first << std::ifstream(p("out.jsonl")).rdbuf();
  ASSERT_EQ(gen("prompts.jsonl", "-n 3 --seed 5").rc, 0);
  std::stringstream second;
  second << std::ifstream(p("out.jsonl")).rdbuf();
  EXPECT_EQ(first.str(), second.str());
}

TEST_F(GenerateCli, BadInputExitsTwoWithOneLine) {
  write("role.jsonl", "{\"prompt\": \"ok\"}\n{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n");
  auto r = gen("role.jsonl");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("role.jsonl:2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("robot"), std::string::npos) << r.err;

  write("nokey.jsonl", "{\"text\": \"x\"}\n");
  r = gen("nokey.jsonl");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("nokey.jsonl:1: expected a \"prompt\" or a \"messages\" key"), std::string::npos) << r.err;

  write("empty.jsonl", "{\"prompt\": \"\"}\n");
  r = gen("empty.jsonl", "--raw");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("prompt 0 is empty"), std::string::npos) << r.err;

  r = gen("prompts.jsonl", "-n 0");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--num-generations = 0"), std::string::npos) << r.err;

  r = gen("prompts.jsonl", "rollout.max_completion_length=0");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("max_completion_length"), std::string::npos) << r.err;
}
