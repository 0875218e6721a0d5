// Prompt rendering into chat messages: template substitution, system prompt, message lists.
#include <gtest/gtest.h>

#include "grpo/data/prompt.h"
#include "grpo/util/error.h"

namespace {

using grpo::config::DataConfig;
using grpo::data::ChatMessage;
using grpo::data::Record;
using nlohmann::json;

TEST(Prompt, TemplateSubstitutesFieldsAndEscapes) {
  json row = {{"q", "2+2"}, {"n", 3}, {"tags", {"a", "b"}}};
  EXPECT_EQ(grpo::data::fill_template("Q: {q} ({n}) {tags} {{literal}}", row), "Q: 2+2 (3) [\"a\",\"b\"] {literal}");
  try {
    grpo::data::fill_template("{missing}", row, "f.jsonl:7");
    FAIL();
  } catch (const grpo::InputError& e) {
    EXPECT_STREQ(e.what(), "f.jsonl:7: data.prompt_template uses {missing} but the record has no field 'missing'");
  }
  EXPECT_THROW(grpo::data::fill_template("oops {q", row), grpo::InputError);
}

TEST(Prompt, StringPromptWithSystemAndTemplate) {
  DataConfig cfg;
  cfg.prompt_field = "question";
  cfg.system_prompt = "Think step by step.";
  cfg.prompt_template = "{prompt}\nLevel {level}. Put the answer in \\boxed{{}}.";
  Record r{{{"question", "What is 6*7?"}, {"answer", "42"}, {"level", 2}}, "t.jsonl", 4};
  auto msgs = grpo::data::render_prompt(r, cfg);
  std::vector<ChatMessage> want = {{"system", "Think step by step."},
                                   {"user", "What is 6*7?\nLevel 2. Put the answer in \\boxed{}."}};
  EXPECT_EQ(msgs, want);
  cfg.system_prompt = "";
  EXPECT_EQ(grpo::data::render_prompt(r, cfg).size(), 1u);
}

TEST(Prompt, MessageListUsedAsIsWithSystemPrepended) {
  DataConfig cfg;
  cfg.system_prompt = "S";
  cfg.prompt_template = "IGNORED {prompt}";
  Record r{{{"prompt", json::array({{{"role", "user"}, {"content", "u1"}}, {{"role", "assistant"}, {"content", "a1"}},
                                     {{"role", "user"}, {"content", "u2"}}})},
            {"answer", 1}},
           "t.jsonl",
           1};
  std::vector<ChatMessage> want = {{"system", "S"}, {"user", "u1"}, {"assistant", "a1"}, {"user", "u2"}};
  EXPECT_EQ(grpo::data::render_prompt(r, cfg), want);
  // A list that already has a system message keeps its own.
  r.row["prompt"].insert(r.row["prompt"].begin(), json{{"role", "system"}, {"content", "mine"}});
  auto msgs = grpo::data::render_prompt(r, cfg);
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[0], (ChatMessage{"system", "mine"}));
}

}  // namespace
