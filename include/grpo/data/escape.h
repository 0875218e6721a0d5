#pragma once
// Text from a data file made safe to print in an error message.
#include <string>

namespace grpo::data {

/// `s` with every byte that is not part of valid UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF), and every ASCII control character, written as \xHH; valid
/// UTF-8 text is unchanged. JSON parsers quote the offending bytes of a bad row in their message
/// ("last read: '...'"), and a raw invalid byte would reach the terminal as is.
std::string escape_for_terminal(const std::string& s);

}  // namespace grpo::data
