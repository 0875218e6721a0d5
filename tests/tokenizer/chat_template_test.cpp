// Chat templates against transformers' apply_chat_template (tests/tokenizer/data/chat_smollm2.json,
// scripts/make_tokenizer_refs.py) and hand-checked Llama-2 / plain renders.
#include "grpo/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "grpo/tokenizer/bpe_tokenizer.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "test_paths.h"

namespace {

using grpo::config::ChatTemplate;
using grpo::tok::ChatFormatter;
using grpo::tok::ChatMessage;
using nlohmann::json;

std::vector<ChatMessage> to_messages(const json& j) {
  std::vector<ChatMessage> out;
  for (const auto& m : j) out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return out;
}

void check_against_transformers(const ChatFormatter& f) {
  auto ref = json::parse(grpo::fs::read_file(grpo::test::kTokData + "chat_smollm2.json"));
  ASSERT_GE(ref.size(), 10u);
  for (const auto& c : ref) {
    auto msgs = to_messages(c["messages"]);
    EXPECT_EQ(f.render(msgs, c["add_generation_prompt"].get<bool>()), c["text"].get<std::string>()) << c.dump();
  }
}

TEST(ChatTemplate, SmolLM2FromGgufMatchesTransformers) {
  if (!std::filesystem::exists(grpo::test::smollm2_gguf()))
    GTEST_SKIP() << grpo::test::smollm2_gguf() << " not found: run scripts/fetch_assets.sh";
  auto tok = grpo::tok::BpeTokenizer::from_gguf(grpo::test::smollm2_gguf());
  ChatFormatter f(ChatTemplate::AUTO, *tok);
  EXPECT_EQ(f.kind(), ChatTemplate::CHATML);  // auto: <|im_start|> exists
  EXPECT_EQ(f.default_system(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  check_against_transformers(f);
}

TEST(ChatTemplate, ChatMLWithTemplateSourceOnly) {
  // The same template text SmolLM2 carries, without loading the model.
  const std::string src =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
      "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
      "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|im_start|>assistant\n' }}{% endif %}";
  check_against_transformers(ChatFormatter(ChatTemplate::CHATML, "", src));
}

TEST(ChatTemplate, AssistantPrefixForR1StylePrompts) {
  ChatFormatter f(ChatTemplate::CHATML, "<think>\n");
  std::vector<ChatMessage> m = {{"system", "Reason step by step."}, {"user", "1+1?"}};
  EXPECT_EQ(f.render(m, true),
            "<|im_start|>system\nReason step by step.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n");
  // No generation prompt: no prefix either.
  EXPECT_EQ(f.render(m, false), "<|im_start|>system\nReason step by step.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n");
}

TEST(ChatTemplate, Llama2MatchesMetaFormat) {
  // Hand-written from Meta's llama-2-chat template (contents stripped, system folded into turn 1).
  ChatFormatter f(ChatTemplate::LLAMA2);
  std::vector<ChatMessage> m = {{"system", " Be brief. "}, {"user", "Hi "}, {"assistant", "Hello."}, {"user", "Bye"}};
  EXPECT_EQ(f.render(m, true),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
  ChatFormatter g(ChatTemplate::LLAMA2, "<think>");
  EXPECT_EQ(g.render({{"user", "Q"}}, true), "<s>[INST] Q [/INST] <think>");
  EXPECT_THROW(f.render({{"user", "a"}, {"user", "b"}}), grpo::InputError);
  EXPECT_THROW(f.render({{"user", "a"}, {"system", "b"}}), grpo::InputError);
}

TEST(ChatTemplate, Plain) {
  ChatFormatter f(ChatTemplate::PLAIN, "<think>");
  EXPECT_EQ(f.render({{"system", "S"}, {"user", "U"}}, true), "System: S\nUser: U\nAssistant: <think>");
  EXPECT_EQ(ChatFormatter(ChatTemplate::PLAIN).render({{"user", "U"}}, true), "User: U\nAssistant:");
}

TEST(ChatTemplate, UnknownRoleAndEmptyConversationAreClearErrors) {
  ChatFormatter f(ChatTemplate::CHATML);
  try {
    f.render({{"user", "a"}, {"tool", "b"}});
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("message 1 has unknown role 'tool'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.render({}), grpo::InputError);
  EXPECT_THROW(ChatFormatter(ChatTemplate::AUTO), grpo::InputError);  // auto needs a tokenizer
}

TEST(ChatTemplate, AutoPicksPlainWithoutImStart) {
  // A tokenizer without <|im_start|> and without a template: plain.
  grpo::tok::BpeTokenizer tok({"a", "b"}, {}, {}, {}, false, false, std::nullopt, "test");
  EXPECT_EQ(ChatFormatter(ChatTemplate::AUTO, tok).kind(), ChatTemplate::PLAIN);
  tok.set_chat_template("{{ bos_token + '[INST] ' + content + ' [/INST]' }}");
  EXPECT_EQ(ChatFormatter(ChatTemplate::AUTO, tok).kind(), ChatTemplate::LLAMA2);
}

}  // namespace
