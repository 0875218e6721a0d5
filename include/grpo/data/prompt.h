#pragma once
// Turning a record into the chat messages of the prompt. The tokenizer layer renders messages to
// text with the model's chat template; this layer only decides what the messages say.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "grpo/config/train_config.h"
#include "grpo/data/dataset.h"

namespace grpo::data {

/// One chat turn.
struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
  bool operator==(const ChatMessage&) const = default;
};

/// Substitutes {name} in `tmpl` by field `name` of `row` (a string field as is, any other JSON value
/// as its compact JSON text); "{{" and "}}" stand for literal braces. Throws grpo::InputError
/// "<where>: prompt_template uses {name} but the record has no field 'name'" for a missing field and
/// names an unclosed '{' in the template. `where` prefixes the message (e.g. "train.jsonl:12").
std::string fill_template(const std::string& tmpl, const nlohmann::json& row, const std::string& where = "");

/// The prompt of a record as chat messages:
///  - prompt field is a string: [system (cfg.system_prompt, when not empty)], user = fill_template(
///    cfg.prompt_template, row) where {prompt} means cfg.prompt_field's value;
///  - prompt field is a list of {role, content}: the messages as they are (the template is not
///    applied: the dataset already wrote the turns), with cfg.system_prompt put first when not
///    empty and the list does not already start with a system message.
/// Throws grpo::InputError naming record.where() on a malformed prompt or a template field missing.
std::vector<ChatMessage> render_prompt(const Record& record, const config::DataConfig& cfg);

}  // namespace grpo::data
