#include "grpo/reward/answer_extraction.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "completion_parts.h"
#include "grpo/util/error.h"
#include "grpo/util/strings.h"

namespace grpo::reward {
namespace {

// Longest candidate text kept; longer ones are cut (they will not parse as an answer anyway).
constexpr size_t kMaxCandidate = 4096;
// Candidates kept per kind of marker: the last ones (only the last candidate overall is the answer;
// a completion with 200000 "####" must not copy 200000 strings).
constexpr size_t kKeepPerKind = 64;

struct Found {
  size_t position;
  std::string_view text;
};

void keep_last(const std::vector<Found>& found, const char* source, std::vector<AnswerCandidate>& out) {
  size_t from = found.size() > kKeepPerKind ? found.size() - kKeepPerKind : 0;
  for (size_t i = from; i < found.size(); ++i)
    out.push_back({std::string(found[i].text.substr(0, kMaxCandidate)), found[i].position, source});
}

// For every '{' of `text`, the index of its matching '}' (npos when unclosed), in one linear pass.
// Backslash-escaped braces (\{ \}) do not count, so \boxed{\{1,2\}} works. One pass keeps a
// completion full of unclosed "\boxed{" linear.
std::vector<size_t> match_braces(std::string_view text) {
  std::vector<size_t> match(text.size(), std::string_view::npos), stack;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '{') stack.push_back(i);
    if (c == '}' && !stack.empty()) {
      match[stack.back()] = i;
      stack.pop_back();
    }
  }
  return match;
}

void find_boxed(std::string_view text, std::string_view cmd, const char* source, std::vector<AnswerCandidate>& out) {
  if (text.find(cmd) == std::string_view::npos) return;
  const std::vector<size_t> match = match_braces(text);
  std::vector<Found> found;
  for (size_t p = text.find(cmd); p != std::string_view::npos; p = text.find(cmd, p + 1)) {
    size_t q = p + cmd.size();
    if (q < text.size() && std::isalpha(static_cast<unsigned char>(text[q]))) continue;  // \boxedx is another macro
    while (q < text.size() && text[q] == ' ') ++q;
    if (q < text.size() && text[q] == '{') {
      size_t e = match[q];
      if (e == std::string_view::npos) continue;
      found.push_back({p, text.substr(q + 1, e - q - 1)});
    } else if (q > p + cmd.size()) {
      // "\boxed 5": one token, up to whitespace or '$'
      size_t e = q;
      const size_t stop = std::min(text.size(), q + 64);  // a token, not a paragraph: stays linear
      while (e < stop && !std::isspace(static_cast<unsigned char>(text[e])) && text[e] != '$') ++e;
      if (e > q) found.push_back({p, text.substr(q, e - q)});
    }
  }
  keep_last(found, source, out);
}

// Built-in markers ("####", "the answer is"): RE2 finds each marker, the candidate is the rest of
// its line (at most 512 bytes), cut at a closing tag ("9</answer>" -> "9") and, for sentences, at the
// end of the sentence. The capture is taken by hand: a counted repetition in the pattern would blow
// up RE2's DFA, and capturing to the end of a megabyte line at every marker would be quadratic.
// `re` null: the literal marker "####" followed by spaces or tabs (found without a regex).
void find_markers(std::string_view text, const re2::RE2* re, const char* source, std::vector<AnswerCandidate>& out,
                  bool sentence) {
  re2::StringPiece input(text.data(), text.size());
  re2::StringPiece m;
  std::vector<Found> found;
  std::vector<std::pair<size_t, size_t>> marks;  // marker start, end
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start, b;
    if (re) {
      if (!re->Match(input, pos, text.size(), re2::RE2::UNANCHORED, &m, 1)) break;
      start = static_cast<size_t>(m.data() - text.data());
      b = start + m.size();
    } else {
      start = text.find("####", pos);
      if (start == std::string_view::npos) break;
      b = start + 4;
      while (b < text.size() && (text[b] == ' ' || text[b] == '\t')) ++b;
    }
    marks.emplace_back(start, b);
    pos = std::max(b, start + 1);  // resume after the marker: a later marker on the line is found too
  }
  // Only the last markers can hold the answer; their lines are read now.
  for (size_t k = marks.size() > kKeepPerKind ? marks.size() - kKeepPerKind : 0; k < marks.size(); ++k) {
    const auto [start, b] = marks[k];
    size_t e = b;
    const size_t stop = std::min(text.size(), b + 512);
    while (e < stop && text[e] != '\n') ++e;
    std::string_view cap = text.substr(b, e - b);
    size_t tag = cap.find("</");
    if (tag != std::string_view::npos) cap = cap.substr(0, tag);
    if (sentence) {
      // "the answer is 5. Next we ..." -> "5"
      for (size_t i = 0; i + 1 < cap.size(); ++i)
        if (cap[i] == '.' && std::isspace(static_cast<unsigned char>(cap[i + 1]))) {
          cap = cap.substr(0, i);
          break;
        }
    }
    std::string_view t = trim(cap);
    if (!t.empty()) found.push_back({start, t});
  }
  keep_last(found, source, out);
}

// Every match of the user's pattern; the candidate is its first capturing group.
void find_user_regex(std::string_view text, const re2::RE2& re, std::vector<AnswerCandidate>& out) {
  re2::StringPiece input(text.data(), text.size());
  re2::StringPiece groups[2];
  std::vector<Found> found;
  size_t pos = 0;
  while (pos <= text.size() && re.Match(input, pos, text.size(), re2::RE2::UNANCHORED, groups, 2)) {
    size_t start = static_cast<size_t>(groups[0].data() - text.data());
    std::string_view t = trim(std::string_view(groups[1].data(), groups[1].size()));
    if (!t.empty() && groups[1].data() != nullptr) found.push_back({start, t});
    size_t end = start + groups[0].size();
    pos = end > start ? end : start + 1;  // never loop on an empty match
  }
  keep_last(found, "regex", out);
}

std::unique_ptr<re2::RE2> compile(const std::string& pattern, const std::string& what) {
  re2::RE2::Options opt;
  opt.set_log_errors(false);
  opt.set_max_mem(8 << 20);
  auto re = std::make_unique<re2::RE2>(pattern, opt);
  GRPO_REQUIRE(re->ok(), what, " \"", pattern, "\" is not a valid RE2 pattern: ", re->error());
  return re;
}

}  // namespace

AnswerExtractor::AnswerExtractor(const std::string& answer_regex, std::string think_tag, std::string answer_tag,
                                 size_t max_bytes)
    : think_tag_(std::move(think_tag)), answer_tag_(std::move(answer_tag)), max_bytes_(max_bytes) {
  GRPO_REQUIRE(!think_tag_.empty() && !answer_tag_.empty(), "reward math_answer: think_tag and answer_tag must not be empty");
  answer_is_ = compile(R"((?i)(?:final answer|the answer)(?:[ \t]+is)?[ \t]*[:：]?[ \t]*)", "built-in pattern");
  if (!answer_regex.empty()) {
    user_ = compile(answer_regex, "reward math_answer: answer_regex");
    GRPO_REQUIRE(user_->NumberOfCapturingGroups() >= 1, "reward math_answer: answer_regex \"", answer_regex,
                 "\" has no capturing group; put the answer in ( )");
  }
}

AnswerExtractor::~AnswerExtractor() = default;
AnswerExtractor::AnswerExtractor(AnswerExtractor&&) noexcept = default;
AnswerExtractor& AnswerExtractor::operator=(AnswerExtractor&&) noexcept = default;

std::vector<AnswerCandidate> AnswerExtractor::find_in(std::string_view text) const {
  std::vector<AnswerCandidate> out;
  find_boxed(text, "\\boxed", "boxed", out);
  find_boxed(text, "\\fbox", "fbox", out);
  const std::string open = "<" + answer_tag_ + ">", close = "</" + answer_tag_ + ">";
  // Each closing tag pairs with the nearest opening tag before it (linear: the search never goes back
  // past the previous closing tag).
  std::vector<Found> tags;
  for (size_t from = 0;;) {
    size_t p = text.find(open, from);
    if (p == std::string_view::npos) break;
    size_t e = text.find(close, p + open.size());
    if (e == std::string_view::npos) break;
    size_t o = text.rfind(open, e - open.size());
    if (o == std::string_view::npos || o < p) o = p;
    std::string_view t = trim(text.substr(o + open.size(), e - o - open.size()));
    if (!t.empty()) tags.push_back({o, t});
    from = e + close.size();
  }
  keep_last(tags, "answer_tag", out);
  find_markers(text, nullptr, "hashes", out, false);
  find_markers(text, answer_is_.get(), "answer_is", out, true);
  if (user_) find_user_regex(text, *user_, out);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.position < b.position; });
  return out;
}

std::vector<AnswerCandidate> AnswerExtractor::candidates(std::string_view completion) const {
  std::string_view region = answer_region(completion, think_tag_);
  if (region.size() > max_bytes_) region = region.substr(region.size() - max_bytes_);
  auto out = find_in(region);
  if (out.empty()) {
    std::string_view t = trim(region);
    if (!t.empty() && t.size() <= 64 && t.find('\n') == std::string_view::npos)
      out.push_back({std::string(t), static_cast<size_t>(t.data() - region.data()), "whole"});
  }
  return out;
}

std::optional<std::string> AnswerExtractor::extract(std::string_view completion) const {
  auto c = candidates(completion);
  if (c.empty()) return std::nullopt;
  return std::move(c.back().text);
}

std::optional<std::string> last_boxed(std::string_view text) {
  std::vector<AnswerCandidate> out;
  find_boxed(text, "\\boxed", "boxed", out);
  find_boxed(text, "\\fbox", "fbox", out);
  if (out.empty()) return std::nullopt;
  auto it = std::max_element(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.position < b.position; });
  return it->text;
}

std::string reference_answer_text(std::string_view reference) {
  if (auto b = last_boxed(reference)) return std::string(trim(*b));
  size_t h = reference.rfind("####");
  if (h != std::string_view::npos) return std::string(trim(reference.substr(h + 4)));
  return std::string(trim(reference));
}

}  // namespace grpo::reward
