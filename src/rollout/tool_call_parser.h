#pragma once
// Internal to the rollout engine (not a public header): finds tool calls in a completion's sampled
// text as it grows. A call is the earliest call_start[i] at or after the floor (the end of the last
// injected result, so tool output never opens a call), then the first call_end[i] after it.
#include <cstdint>
#include <optional>
#include <string>

#include "grpo/config/rollout_config.h"

namespace grpo::rollout {

/// Per sequence.
struct ToolParseState {
  size_t floor = 0;     // text before this offset is not searched (injected results, finished calls)
  size_t parsed = 0;    // text size at the last find()
  int64_t open = -1;    // offset where the code of an opened call begins, -1 when none is open
  size_t syntax = 0;    // which call_start / call_end pair opened it
  int calls = 0;        // calls run so far
  int64_t ticket = -1;  // the call in flight (ToolRunner ticket), -1 when none
};

struct FoundCall {
  size_t syntax = 0;
  size_t code_begin = 0, code_end = 0;  // the program is text[code_begin, code_end)
  size_t end = 0;                       // offset just past call_end
};

class ToolCallParser {
 public:
  explicit ToolCallParser(const config::ToolsConfig& cfg) : cfg_(&cfg) {}
  /// Looks at the text that arrived since the last call (the whole text is `text`). Returns the call
  /// that `text` completes, if any, and moves st past it.
  std::optional<FoundCall> find(const std::string& text, ToolParseState& st) const;

 private:
  const config::ToolsConfig* cfg_;
};

}  // namespace grpo::rollout
