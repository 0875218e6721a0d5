#pragma once
// Small string helpers shared by the config loader, tokenizers and rewards.
#include <string>
#include <string_view>
#include <vector>

namespace grpo {

/// Levenshtein distance (insert, delete, substitute each cost 1). O(|a|*|b|) time.
size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` by edit distance, or "" when none is within
/// max(2, |word|/3) edits (close enough to be a typo rather than a different word).
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

/// Splits on a single character; empty fields are kept ("a..b" -> {"a","","b"}).
std::vector<std::string> split(std::string_view s, char sep);

/// Joins with a separator.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

/// Removes ASCII whitespace from both ends.
std::string_view trim(std::string_view s);

}  // namespace grpo
