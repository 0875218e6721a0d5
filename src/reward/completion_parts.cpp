#include "completion_parts.h"

#include <string>

namespace grpo::reward {
namespace {
std::string open_tag(std::string_view t) { return "<" + std::string(t) + ">"; }
std::string close_tag(std::string_view t) { return "</" + std::string(t) + ">"; }
}  // namespace

std::string_view answer_region(std::string_view completion, std::string_view think_tag) {
  const std::string close = close_tag(think_tag);
  size_t c = completion.rfind(close);
  if (c != std::string_view::npos) return completion.substr(c + close.size());
  if (completion.find(open_tag(think_tag)) != std::string_view::npos) return {};
  return completion;
}

std::string_view chain_of_thought(std::string_view completion, std::string_view think_tag) {
  const std::string open = open_tag(think_tag), close = close_tag(think_tag);
  size_t o = completion.find(open);
  if (o != std::string_view::npos) {
    size_t begin = o + open.size();
    size_t c = completion.find(close, begin);
    return c == std::string_view::npos ? completion.substr(begin) : completion.substr(begin, c - begin);
  }
  size_t c = completion.find(close);
  return c == std::string_view::npos ? completion : completion.substr(0, c);
}

std::optional<std::string_view> last_tag_content(std::string_view text, std::string_view tag, size_t* start) {
  const std::string open = open_tag(tag), close = close_tag(tag);
  size_t c = text.rfind(close);
  while (c != std::string_view::npos) {
    size_t o = text.rfind(open, c);
    if (o != std::string_view::npos && o + open.size() <= c) {
      if (start) *start = o;
      return text.substr(o + open.size(), c - o - open.size());
    }
    if (c == 0) break;
    c = text.rfind(close, c - 1);
  }
  return std::nullopt;
}

std::string strip_tool_output(std::string_view text, std::string_view open, std::string_view close) {
  if (open.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t from = 0;
  for (size_t o; (o = text.find(open, from)) != std::string_view::npos;) {
    out.append(text.substr(from, o - from));
    size_t c = close.empty() ? std::string_view::npos : text.find(close, o + open.size());
    if (c == std::string_view::npos) return out;  // unclosed: the output runs to the end
    from = c + close.size();
  }
  out.append(text.substr(from));
  return out;
}

std::string_view policy_text(const RewardInput& row, std::string& storage) {
  if (row.tool_output_open.empty()) return row.completion;
  storage = strip_tool_output(row.completion, row.tool_output_open, row.tool_output_close);
  return storage;
}

}  // namespace grpo::reward
