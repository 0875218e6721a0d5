#include "grpo/tokenizer/pretokenizer.h"

#include "grpo/tokenizer/unicode.h"

namespace grpo::tok {
namespace {

const std::string kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const std::string kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The text decoded once into code points with their byte offsets.
struct Chars {
  std::vector<char32_t> cp;
  std::vector<size_t> off;  // off[k] = byte offset of cp[k]; off[n] = text size
  explicit Chars(std::string_view s) {
    cp.reserve(s.size());
    off.reserve(s.size() + 1);
    size_t i = 0;
    while (i < s.size()) {
      off.push_back(i);
      cp.push_back(next_code_point(s, i));
    }
    off.push_back(s.size());
  }
  size_t size() const { return cp.size(); }
};

bool is_other(char32_t c) { return !is_whitespace(c) && !is_letter(c) && !is_number(c); }
bool is_crlf(char32_t c) { return c == '\r' || c == '\n'; }

char32_t fold(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0x17f) return 's';  // LATIN SMALL LETTER LONG S case-folds to 's' (Oniguruma (?i))
  return c;
}

// Length (in chars) of a contraction match at k, or 0. `ci`: case-insensitive.
size_t contraction(const Chars& t, size_t k, bool ci) {
  size_t n = t.size();
  if (t.cp[k] != '\'' || k + 1 >= n) return 0;
  auto c = [&](size_t j) { return j < n ? (ci ? fold(t.cp[j]) : t.cp[j]) : char32_t(0); };
  char32_t a = c(k + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  char32_t b = c(k + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

template <class Pred>
size_t run(const Chars& t, size_t k, Pred p) {
  while (k < t.size() && p(t.cp[k])) ++k;
  return k;
}

// \s+(?!\S)|\s+ at k (t.cp[k] is whitespace): the whole run when it ends the text or when it has
// one char; otherwise the run minus its last char (which then starts the next word).
size_t whitespace_tail(const Chars& t, size_t k) {
  size_t j = run(t, k, is_whitespace);
  if (j == t.size() || j - k == 1) return j;
  return j - 1;
}

// End (char index) of the match starting at k.
size_t match_gpt2(const Chars& t, size_t k) {
  const size_t n = t.size();
  const char32_t c = t.cp[k];
  if (size_t m = contraction(t, k, false)) return k + m;
  const bool sp = c == ' ' && k + 1 < n;
  const char32_t nx = sp ? t.cp[k + 1] : 0;
  if (is_letter(c)) return run(t, k, is_letter);
  if (sp && is_letter(nx)) return run(t, k + 1, is_letter);
  if (is_number(c)) return run(t, k, is_number);
  if (sp && is_number(nx)) return run(t, k + 1, is_number);
  if (is_other(c)) return run(t, k, is_other);
  if (sp && is_other(nx)) return run(t, k + 1, is_other);
  return whitespace_tail(t, k);
}

size_t match_llama(const Chars& t, size_t k, bool three_digits) {
  const size_t n = t.size();
  const char32_t c = t.cp[k];
  if (size_t m = contraction(t, k, true)) return k + m;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (is_letter(c)) return run(t, k, is_letter);
  if (!is_crlf(c) && !is_number(c) && k + 1 < n && is_letter(t.cp[k + 1])) return run(t, k + 1, is_letter);
  // \p{N}{1,3} or \p{N}
  if (is_number(c)) {
    size_t j = k + 1;
    while (three_digits && j < n && j < k + 3 && is_number(t.cp[j])) ++j;
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t o = k;
  if (c == ' ' && k + 1 < n && is_other(t.cp[k + 1])) o = k + 1;
  if (is_other(t.cp[o])) return run(t, run(t, o, is_other), is_crlf);
  // \s*[\r\n]+ : up to and including the last CR/LF of the whitespace run
  size_t j = run(t, k, is_whitespace);
  for (size_t q = j; q > k; --q)
    if (is_crlf(t.cp[q - 1])) return q;
  return whitespace_tail(t, k);
}

std::vector<std::string_view> to_views(std::string_view text, const Chars& t, const std::vector<size_t>& cuts) {
  std::vector<std::string_view> out;
  out.reserve(cuts.size());
  size_t prev = 0;
  for (size_t c : cuts) {
    out.push_back(text.substr(t.off[prev], t.off[c] - t.off[prev]));
    prev = c;
  }
  return out;
}

}  // namespace

const std::string& split_pattern_regex(SplitPattern p) {
  switch (p) {
    case SplitPattern::GPT2: return kGpt2;
    case SplitPattern::LLAMA3: return kLlama3;
    case SplitPattern::QWEN2: return kQwen2;
  }
  return kGpt2;
}

std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex) {
  for (auto p : {SplitPattern::GPT2, SplitPattern::LLAMA3, SplitPattern::QWEN2})
    if (regex == split_pattern_regex(p)) return p;
  // Llama-3's tokenizer.json spells the letter class with \p{L} but some conversions write the
  // `\s+(?!\S)` alternative last-but-one identically; nothing else is accepted.
  return std::nullopt;
}

std::vector<std::string_view> split_words(std::string_view text, SplitPattern p) {
  Chars t(text);
  std::vector<size_t> cuts;
  size_t k = 0;
  while (k < t.size()) {
    size_t e = p == SplitPattern::GPT2 ? match_gpt2(t, k) : match_llama(t, k, p == SplitPattern::LLAMA3);
    if (e <= k) e = k + 1;  // cannot happen (every char matches some alternative); never loop
    cuts.push_back(e);
    k = e;
  }
  return to_views(text, t, cuts);
}

std::vector<std::string_view> split_digits(std::string_view text, bool individual) {
  Chars t(text);
  std::vector<size_t> cuts;
  size_t k = 0;
  while (k < t.size()) {
    size_t e;
    if (is_number(t.cp[k])) e = individual ? k + 1 : run(t, k, is_number);
    else e = run(t, k, [](char32_t c) { return !is_number(c); });
    cuts.push_back(e);
    k = e;
  }
  return to_views(text, t, cuts);
}

}  // namespace grpo::tok
