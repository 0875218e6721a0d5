#pragma once
// Errors of config loading. Each names where (file:line:column), which key (its full dotted path)
// and what kind of problem, so tests can assert all three and users see one clear line.
#include <string>

#include "grpo/util/error.h"

namespace grpo::config {

enum class ConfigErrorKind {
  FILE_ERROR,     // missing, empty, unreadable, or a directory
  PARSE_ERROR,    // malformed YAML
  UNKNOWN_KEY,    // a key no struct declares (message carries "did you mean")
  WRONG_TYPE,     // e.g. a string where an integer is expected
  OUT_OF_RANGE,   // a number outside its allowed range
  BAD_VALUE,      // a value of the right type that is not allowed (enum name, cross-field rule)
  BAD_OVERRIDE,   // a command-line override that is not key.path=value
  INCLUDE_CYCLE,  // a file includes itself, directly or through others
};

const char* to_string(ConfigErrorKind k);

/// Where a value came from. line/column are 1-based; line 0 means "no position" (e.g. a whole
/// file, or an override from the command line, whose `file` is "command line").
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string to_string() const;  // "file:line:col", "file", or "" when unknown
};

/// Thrown for any bad config input. what() is "<location>: <message>".
class ConfigError : public InputError {
 public:
  ConfigError(ConfigErrorKind kind, std::string key_path, SourceLocation where, const std::string& message);
  ConfigErrorKind kind() const { return kind_; }
  /// Full dotted key path, e.g. "grpo.num_generations" or "reward.functions.1.weight"; "" when the
  /// error is about a whole file.
  const std::string& key_path() const { return key_path_; }
  const SourceLocation& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  ConfigErrorKind kind_;
  std::string key_path_;
  SourceLocation where_;
  std::string message_;
};

}  // namespace grpo::config
