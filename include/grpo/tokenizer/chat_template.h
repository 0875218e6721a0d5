#pragma once
// Renders chat messages into the prompt text a model was trained on. Three formats, written out
// in C++ rather than by a Jinja engine (the templates below are the whole of what grpo needs):
//
//   CHATML (Qwen, SmolLM2):  <|im_start|>{role}\n{content}<|im_end|>\n ... then, with
//       add_generation_prompt, "<|im_start|>assistant\n" + assistant_prefix. When the model's own
//       template inserts a default system message if the conversation has none (SmolLM2, Qwen2.5),
//       that message is taken from the template source and inserted the same way.
//   LLAMA2 (Llama-2-chat, Meta's template): <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]
//       {assistant} </s><s>[INST] {user} [/INST] ...; contents are stripped as that template does.
//       A generation prompt is the trailing " [/INST]" itself, plus " " + assistant_prefix.
//   PLAIN: "{Role}: {content}\n" per turn (System/User/Assistant); generation prompt
//       "Assistant:" + (" " + assistant_prefix when set).
#include <string>
#include <vector>

#include "grpo/config/model_config.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo::tok {

struct ChatMessage {
  std::string role;     // system | user | assistant
  std::string content;
};

class ChatFormatter {
 public:
  /// `kind` AUTO picks from the tokenizer: CHATML when it has a <|im_start|> token, LLAMA2 when
  /// its chat template source contains "[INST]", else PLAIN. `assistant_prefix` (e.g. "<think>")
  /// starts the generated assistant turn (R1-style prompts).
  ChatFormatter(config::ChatTemplate kind, const Tokenizer& tokenizer, std::string assistant_prefix = "");
  /// Without a tokenizer (AUTO is not allowed here; throws grpo::InputError). `template_source` is
  /// the model's Jinja template, used only to find a default system message.
  ChatFormatter(config::ChatTemplate kind, std::string assistant_prefix = "", std::string template_source = "",
                std::string bos = "<s>", std::string eos = "</s>");

  /// The prompt text. Throws grpo::InputError for an unknown role (naming the message index and
  /// the role), an empty conversation, or (LLAMA2) a system message that is not first or turns
  /// that do not alternate user/assistant.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  config::ChatTemplate kind() const { return kind_; }
  /// The system message inserted when a conversation has none ("" = none).
  const std::string& default_system() const { return default_system_; }

 private:
  config::ChatTemplate kind_;
  std::string prefix_, default_system_, bos_, eos_;
};

/// The default system message of a ChatML Jinja template: the literal
/// '<|im_start|>system\n...<|im_end|>' it emits when messages[0] is not a system message, or "".
std::string default_system_from_template(const std::string& source);

}  // namespace grpo::tok
