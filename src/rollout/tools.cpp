#include "grpo/rollout/tools.h"

#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"

namespace grpo::rollout {

std::string tool_result_text(const config::ToolsConfig& cfg, const std::string& body) {
  size_t end = body.size();
  while (end > 0 && body[end - 1] == '\n') --end;
  return cfg.output_prefix + body.substr(0, end) + cfg.output_suffix;
}

std::vector<int64_t> tool_result_tokens(const tok::Tokenizer& tok, const config::ToolsConfig& cfg,
                                        const std::string& body) {
  const std::vector<int32_t> ids = tok.encode(tool_result_text(cfg, body));
  return {ids.begin(), ids.end()};
}

void validate_tools(const config::ToolsConfig& cfg) {
  for (const auto& t : cfg.enabled)
    GRPO_REQUIRE(t == "python", "rollout.tools.enabled: unknown tool '", t, "' (known: python)");
  if (!cfg.on()) return;
  GRPO_REQUIRE(!cfg.call_start.empty() && cfg.call_start.size() == cfg.call_end.size(),
               "rollout.tools: call_start has ", cfg.call_start.size(), " strings and call_end ", cfg.call_end.size(),
               ": they are paired by index and need at least one pair");
  for (size_t i = 0; i < cfg.call_start.size(); ++i)
    GRPO_REQUIRE(!cfg.call_start[i].empty() && !cfg.call_end[i].empty(), "rollout.tools: call_start[", i,
                 "] or call_end[", i, "] is empty");
}

}  // namespace grpo::rollout
