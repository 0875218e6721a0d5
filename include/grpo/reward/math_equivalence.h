#pragma once
// Are two final answers the same mathematical object? LaTeX is normalised, parsed by our own small
// recursive-descent parser into GiNaC expressions, and compared symbolically ((a - b).normal() == 0)
// or numerically within a relative tolerance. GiNaC is not thread-safe (reference counts), so all
// GiNaC work in this file is serialised by one mutex.
//
// Supported: integers (thousands separators "1,000", "1\,000", "1{,}000", "1 000"), decimals,
// fractions a/b and \frac{a}{b} (\dfrac, \tfrac, \cfrac, \frac12), percentages (50% equals 50 and
// 0.5), scientific notation (1.5e3, 1.5\times10^{3}), negative numbers, \sqrt{x}, \sqrt[n]{x},
// \pi, \infty, powers, factorial, implicit multiplication (2\sqrt{3}, 2x), \sin \cos \tan \ln \log
// \exp, single-letter and Greek symbols (x, \alpha, a_1), wrappers ($, \(...\), \text{}, \mathrm{},
// \left \right, \displaystyle, degrees ^\circ), unit words after a number ("5 cm"), "x = 5"
// (the right-hand side), tuples (1, 2), intervals [0, 1), sets \{1, 2\} (unordered) and bare lists
// "1, 2" (unordered), plain words ("Yes", "Paris": compared case-insensitively).
//
// Guards: answers longer than 1000 bytes (400 after normalisation) are not parsed; number literals
// over 300 digits, nesting deeper than about 40 brackets, integer powers whose result would exceed 20000 bits
// (10^10^10), symbolic powers above 64 and factorials above 500 make the text unparseable rather
// than slow.
#include <string>
#include <string_view>

namespace grpo::reward {

enum class MathMatch {
  EQUAL,
  NOT_EQUAL,
  UNPARSEABLE_ANSWER,     // the model's answer is not something we can read: not equal
  UNPARSEABLE_REFERENCE,  // the dataset's answer cannot be read: report it, never reward it
};

const char* to_string(MathMatch m);

/// LaTeX and unicode normalisation (wrappers removed, \dfrac -> \frac, thousands separators
/// dropped, units stripped, "x = 5" -> "5"). Sets *percent when a % sign (or "\%") was removed.
/// Exposed for tests; compare_math_answers() calls it.
std::string normalize_math_text(std::string_view text, bool* percent = nullptr);

/// Compares the model's `answer` to `reference` (both as extracted, e.g. the \boxed{} content).
/// Numbers are equal when |a - b| <= rel_tolerance * max(|a|, |b|) (complex magnitudes), or when
/// exactly equal; symbolic expressions when (a - b).normal() == 0. `detail` (optional) receives
/// why the answer or reference did not parse. Never throws for any input.
MathMatch compare_math_answers(std::string_view answer, std::string_view reference, double rel_tolerance,
                               std::string* detail = nullptr);

}  // namespace grpo::reward
