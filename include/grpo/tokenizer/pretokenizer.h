#pragma once
// The pre-tokenizer split of byte-level BPE tokenizers: the text is cut into "words" before BPE
// merges run inside each word. The three regexes in use are reproduced exactly by a hand-written
// scanner (RE2 has no lookahead for `\s+(?!\S)`), including Oniguruma's ordered-alternation and
// backtracking semantics as HF `tokenizers` runs them:
//
//   GPT2   (GPT-2, SmolLM2/StarCoder; HF ByteLevel use_regex=true):
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   LLAMA3 (Llama-3):
//     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   QWEN2  (Qwen2/2.5/3): as LLAMA3 with \p{N} instead of \p{N}{1,3}.
//
// `\s` is Unicode White_Space (see unicode.h). Every position of the input is covered by some
// alternative, so the pieces concatenate back to the input.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::tok {

enum class SplitPattern { GPT2, LLAMA3, QWEN2 };

/// The regex source of a pattern, exactly as it appears in tokenizer.json files.
const std::string& split_pattern_regex(SplitPattern p);

/// The pattern whose regex source is `regex` (as found in a tokenizer.json "Split" pre-tokenizer),
/// or nullopt when it is none of the three.
std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex);

/// Splits `text` into consecutive pieces (views into `text`) as the regex would (HF "Isolated"
/// behaviour: matches and any gaps both become pieces). Invalid UTF-8 bytes count as one
/// "other" character each.
std::vector<std::string_view> split_words(std::string_view text, SplitPattern p);

/// HF `Digits` pre-tokenizer: isolates runs of \p{N} characters, or every single one when
/// `individual` is true.
std::vector<std::string_view> split_digits(std::string_view text, bool individual);

}  // namespace grpo::tok
