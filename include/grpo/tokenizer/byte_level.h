#pragma once
// GPT-2's reversible byte <-> unicode map (openai/gpt-2 encoder.py bytes_to_unicode; HF
// `tokenizers` ByteLevel): printable bytes map to themselves, the other 68 to U+0100.. in order,
// so every byte string becomes a printable string the BPE vocabulary can hold (' ' -> 'Ġ').
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace grpo::tok {

/// Code point that byte b maps to.
char32_t byte_to_unicode(uint8_t b);

/// UTF-8 string of byte_to_unicode(b) for every byte.
const std::array<std::string, 256>& byte_to_unicode_strings();

/// Byte that code point cp stands for, or -1 when cp is not in the byte-level alphabet.
int unicode_to_byte(char32_t cp);

/// Maps every byte of `bytes` (byte-level encode of one word).
std::string bytes_to_unicode(std::string_view bytes);

}  // namespace grpo::tok
