#pragma once
// UTF-8 and Unicode-class helpers for the tokenizers (no ICU: RE2's Unicode tables answer \p{L}
// and \p{N}; White_Space is a fixed list).
#include <cstdint>
#include <string>
#include <string_view>

namespace grpo::tok {

/// Decodes the code point at s[i] and advances i. Invalid or truncated UTF-8 yields U+FFFD and
/// advances by one byte (the pre-tokenizer must never loop or crash on bad input).
char32_t next_code_point(std::string_view s, size_t& i);

/// Appends the UTF-8 encoding of cp.
void append_utf8(std::string& out, char32_t cp);

/// Unicode general category L* (\p{L} in the GPT-2/Llama-3/Qwen2 split regexes).
bool is_letter(char32_t cp);
/// Unicode general category N* (\p{N}; also Rust's char::is_numeric used by HF's Digits).
bool is_number(char32_t cp);
/// Unicode White_Space property, which is what `\s` matches in the Oniguruma regexes of HF
/// `tokenizers` (checked against tokenizers 0.23: U+0009-000D, 0020, 0085, 00A0, 1680,
/// 2000-200A, 2028, 2029, 202F, 205F, 3000; not U+001C-001F, 200B or FEFF).
bool is_whitespace(char32_t cp);

/// Bytes -> valid UTF-8, each maximal invalid subsequence replaced by U+FFFD exactly as Rust's
/// String::from_utf8_lossy (which HF `tokenizers` uses when decoding byte-level tokens).
std::string utf8_lossy(std::string_view bytes);

/// Unicode Normalization Form C (UAX #15), as the NFC normalizer of HF `tokenizers` (Qwen2's
/// tokenizer.json) applies it. Tables from Python's unicodedata (scripts/make_unicode_tables.py).
/// ASCII and invalid UTF-8 are returned unchanged.
std::string nfc(std::string_view s);

}  // namespace grpo::tok
