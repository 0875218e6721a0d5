#include "grpo/train/sft_response.h"

#include "grpo/rollout/tools.h"

namespace grpo::train {
namespace {

void append(SftResponse& r, const std::vector<int64_t>& ids, uint8_t injected) {
  r.ids.insert(r.ids.end(), ids.begin(), ids.end());
  r.injected.insert(r.injected.end(), ids.size(), injected);
}

std::vector<int64_t> encode(const tok::Tokenizer& tok, std::string_view text) {
  auto ids = tok.encode(text);
  return {ids.begin(), ids.end()};
}

}  // namespace

SftResponse tokenize_sft_response(const tok::Tokenizer& tok, const config::ToolsConfig& tools, const std::string& text) {
  SftResponse r;
  const std::string& open = tools.output_prefix;
  const std::string& close = tools.output_suffix;
  size_t from = 0;
  if (tools.on() && !open.empty()) {
    for (size_t o; (o = text.find(open, from)) != std::string::npos;) {
      const size_t c = text.find(close, o + open.size());
      if (c == std::string::npos) break;  // unclosed: ordinary text
      if (o > from) append(r, encode(tok, std::string_view(text).substr(from, o - from)), 0);
      append(r, rollout::tool_result_tokens(tok, tools, text.substr(o + open.size(), c - o - open.size())), 1);
      from = c + close.size();
    }
  }
  if (from < text.size()) append(r, encode(tok, std::string_view(text).substr(from)), 0);
  return r;
}

std::string sft_response_after_prefix(const std::string& text, const std::string& assistant_prefix) {
  if (assistant_prefix.empty() || text.compare(0, assistant_prefix.size(), assistant_prefix) != 0) return text;
  return text.substr(assistant_prefix.size());
}

}  // namespace grpo::train
