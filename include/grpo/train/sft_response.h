#pragma once
// The token ids of an SFT response (stages[].response_field), laid out as the rollout engine would
// have produced them with rollout.tools on (issue 21): the policy's own text is tokenised segment by
// segment, and each tool result in it (output_prefix + body + output_suffix, as the engine injects
// it) is tokenised on its own by rollout::tool_result_tokens and marked injected. SFT then trains on
// the policy's tokens only and keeps the tool output as context, as GRPO does.
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/rollout_config.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo::train {

struct SftResponse {
  std::vector<int64_t> ids;       // the response's tokens (no EOS)
  std::vector<uint8_t> injected;  // same length: 1 = inside a tool result (no loss), 0 = the policy's
};

/// Tools off (tools.enabled empty): ids = tok.encode(text), injected all 0. Tools on: text is cut at
/// every complete output_prefix ... output_suffix span; the text between spans is encoded as it
/// stands, each span by rollout::tool_result_tokens(tok, tools, body). An output_prefix without a
/// following output_suffix is ordinary text.
SftResponse tokenize_sft_response(const tok::Tokenizer& tok, const config::ToolsConfig& tools, const std::string& text);

/// The part of an SFT response the model must produce after the prompt: the prompt already ends with
/// tokenizer.assistant_prefix (e.g. "<think>"), so a response that starts with the same text (a
/// task's "<think>...</think><answer>...</answer>" solution) loses that copy; otherwise SFT would
/// teach "<think><think>...", which the strict format reward rejects. Other responses are unchanged.
std::string sft_response_after_prefix(const std::string& text, const std::string& assistant_prefix);

}  // namespace grpo::train
