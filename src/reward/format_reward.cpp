#include "grpo/reward/format_reward.h"

#include "completion_parts.h"
#include "grpo/util/error.h"
#include "grpo/util/strings.h"

namespace grpo::reward {
namespace {

size_t count(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

bool blank(std::string_view s) { return trim(s).empty(); }

void check_tag(const std::string& tag, const char* key) {
  GRPO_REQUIRE(!tag.empty() && tag.find_first_of("<>/ \t\n\r") == std::string::npos, "reward format: ", key,
               " must be a non-empty tag name without <, >, / or spaces, got \"", tag, "\"");
}

}  // namespace

float format_score(std::string_view prompt, std::string_view completion, const config::FormatParams& p) {
  const std::string to = "<" + p.think_tag + ">", tc = "</" + p.think_tag + ">";
  const std::string ao = "<" + p.answer_tag + ">", ac = "</" + p.answer_tag + ">";
  std::string buf;
  std::string_view ptrim = trim(prompt);
  if (ptrim.size() >= to.size() && ptrim.substr(ptrim.size() - to.size()) == to) {
    buf = to + std::string(completion);  // the prompt opened the think block for the model
    completion = buf;
  }
  if (p.mode == config::FormatMode::SOFT) {
    size_t a = completion.find(to);
    if (a == std::string_view::npos) return 0.0f;
    size_t b = completion.find(tc, a + to.size());
    if (b == std::string_view::npos) return 0.0f;
    size_t c = completion.find(ao, b + tc.size());
    if (c == std::string_view::npos) return 0.0f;
    size_t d = completion.find(ac, c + ao.size());
    return d == std::string_view::npos ? 0.0f : 1.0f;
  }
  // strict
  std::string_view s = trim(completion);
  for (const std::string* t : {&to, &tc, &ao, &ac})
    if (count(s, *t) != 1) return 0.0f;
  if (s.substr(0, to.size()) != to) return 0.0f;
  if (s.size() < ac.size() || s.substr(s.size() - ac.size()) != ac) return 0.0f;
  size_t b = s.find(tc), c = s.find(ao), d = s.find(ac);
  if (!(to.size() <= b && b + tc.size() <= c && c + ao.size() <= d)) return 0.0f;
  if (!blank(s.substr(b + tc.size(), c - b - tc.size()))) return 0.0f;
  if (blank(s.substr(c + ao.size(), d - c - ao.size()))) return 0.0f;
  return 1.0f;
}

FormatReward::FormatReward(config::FormatParams p) : p_(std::move(p)) {
  check_tag(p_.think_tag, "think_tag");
  check_tag(p_.answer_tag, "answer_tag");
  GRPO_REQUIRE(p_.think_tag != p_.answer_tag, "reward format: think_tag and answer_tag must differ, both are \"",
               p_.think_tag, "\"");
}

float FormatReward::score_row(const RewardInput& row, std::string&) const {
  std::string own;  // tags a tool printed are not the model's format
  return format_score(row.prompt, policy_text(row, own), p_);
}

}  // namespace grpo::reward
