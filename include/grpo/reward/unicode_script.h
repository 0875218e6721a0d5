#pragma once
// Which writing system a code point belongs to, by Unicode block ranges, and a UTF-8 decoder that
// survives invalid input. Used by the language-consistency reward.
#include <cstdint>
#include <optional>
#include <string_view>

namespace grpo::reward {

enum class Script { NONE, LATIN, CJK, CYRILLIC, ARABIC, DEVANAGARI, OTHER_LETTER };

/// NONE for non-letters (digits, punctuation, symbols, spaces, emoji, U+FFFD); OTHER_LETTER for
/// letters of scripts not listed (Greek, Hebrew, Thai, ...). CJK covers Han, Hiragana, Katakana and
/// Hangul; LATIN covers ASCII letters, Latin-1 letters, Latin Extended and fullwidth Latin.
Script script_of(char32_t cp);

/// Parses "latin", "cjk", "cyrillic", "arabic", "devanagari"; nullopt for anything else.
std::optional<Script> script_from_name(std::string_view name);

/// Decodes the code point at s[i] and advances i. Invalid or truncated sequences, overlong forms,
/// surrogates and values above U+10FFFF decode to U+FFFD and advance one byte.
char32_t next_code_point(std::string_view s, size_t& i);

}  // namespace grpo::reward
