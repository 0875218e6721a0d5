#include "tool_call_parser.h"

#include <algorithm>

namespace grpo::rollout {

namespace {
// Where to resume searching for `pattern`: an occurrence that ended within the first `old` bytes
// was seen by an earlier call.
size_t resume_at(size_t old, size_t pattern, size_t floor) {
  return std::max(floor, old + 1 > pattern ? old + 1 - pattern : size_t{0});
}
}  // namespace

std::optional<FoundCall> ToolCallParser::find(const std::string& text, ToolParseState& st) const {
  const size_t old = st.parsed;
  st.parsed = text.size();
  if (st.open < 0) {
    size_t best = std::string::npos;
    for (size_t i = 0; i < cfg_->call_start.size(); ++i) {
      const auto& s = cfg_->call_start[i];
      const size_t pos = text.find(s, resume_at(old, s.size(), st.floor));
      if (pos != std::string::npos && (best == std::string::npos || pos < best)) {
        best = pos;
        st.syntax = i;
      }
    }
    if (best == std::string::npos) return std::nullopt;
    st.open = static_cast<int64_t>(best + cfg_->call_start[st.syntax].size());
    // The code may already hold the call's end: search it from the code's start.
    const auto& e = cfg_->call_end[st.syntax];
    const size_t pos = text.find(e, static_cast<size_t>(st.open));
    if (pos == std::string::npos) return std::nullopt;
    FoundCall f{st.syntax, static_cast<size_t>(st.open), pos, pos + e.size()};
    st.open = -1;
    st.floor = f.end;
    return f;
  }
  const auto& e = cfg_->call_end[st.syntax];
  const size_t pos = text.find(e, resume_at(old, e.size(), static_cast<size_t>(st.open)));
  if (pos == std::string::npos) return std::nullopt;
  FoundCall f{st.syntax, static_cast<size_t>(st.open), pos, pos + e.size()};
  st.open = -1;
  st.floor = f.end;
  return f;
}

}  // namespace grpo::rollout
