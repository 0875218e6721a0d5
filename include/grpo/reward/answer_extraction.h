#pragma once
// Finding the final answer in a math completion. Every pattern runs through RE2 (linear time in
// the text, so no completion can make extraction slow); brace matching is a linear scan.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace grpo::reward {

/// One answer candidate: its text and where its marker starts in the searched text.
struct AnswerCandidate {
  std::string text;
  size_t position = 0;
  std::string source;  // "boxed", "fbox", "answer_tag", "hashes", "answer_is", "regex", "whole"
};

/// Extracts answer candidates from a completion. The searched text is answer_region() (after the
/// last </think>; nothing when a <think> is never closed), limited to its last `max_bytes` bytes.
/// Candidates, in order of position:
///   \boxed{...} and \fbox{...} (nested braces, \{ \} escapes; also "\boxed 5"),
///   <answer>...</answer> (tag name configurable),
///   "#### x" (GSM8K: the rest of the line),
///   "the answer is x" / "final answer: x" (case-insensitive; up to the end of line or sentence),
///   matches of the optional user regex (its first capturing group).
/// The final answer is the candidate that starts last. When there is none and the region is a
/// single short line (<= 64 bytes, e.g. a bare "42"), the whole region is the answer.
class AnswerExtractor {
 public:
  /// Throws grpo::InputError when `answer_regex` does not compile under RE2 or has no capturing
  /// group, or a tag name is empty.
  explicit AnswerExtractor(const std::string& answer_regex = "", std::string think_tag = "think",
                           std::string answer_tag = "answer", size_t max_bytes = size_t{1} << 20);
  ~AnswerExtractor();
  AnswerExtractor(AnswerExtractor&&) noexcept;
  AnswerExtractor& operator=(AnswerExtractor&&) noexcept;

  /// The candidates of the completion, sorted by position (of each kind, only the last 64 are kept).
  std::vector<AnswerCandidate> candidates(std::string_view completion) const;
  /// The final answer (the last candidate), or nullopt when the completion has none.
  std::optional<std::string> extract(std::string_view completion) const;

 private:
  std::vector<AnswerCandidate> find_in(std::string_view text) const;
  std::string think_tag_, answer_tag_;
  size_t max_bytes_;
  std::unique_ptr<re2::RE2> answer_is_, user_;
};

/// The content of the last \boxed{...} (or \fbox{...}) in `text`, or nullopt.
std::optional<std::string> last_boxed(std::string_view text);

/// The reference answer as written in a dataset field: the last \boxed{} content when there is one
/// (MATH solutions), else the text after the last "####" (GSM8K), else the whole text, trimmed.
std::string reference_answer_text(std::string_view reference);

}  // namespace grpo::reward
