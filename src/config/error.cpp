#include "grpo/config/error.h"

namespace grpo::config {

const char* to_string(ConfigErrorKind k) {
  switch (k) {
    case ConfigErrorKind::FILE_ERROR: return "file_error";
    case ConfigErrorKind::PARSE_ERROR: return "parse_error";
    case ConfigErrorKind::UNKNOWN_KEY: return "unknown_key";
    case ConfigErrorKind::WRONG_TYPE: return "wrong_type";
    case ConfigErrorKind::OUT_OF_RANGE: return "out_of_range";
    case ConfigErrorKind::BAD_VALUE: return "bad_value";
    case ConfigErrorKind::BAD_OVERRIDE: return "bad_override";
    case ConfigErrorKind::INCLUDE_CYCLE: return "include_cycle";
  }
  return "?";
}

std::string SourceLocation::to_string() const {
  if (file.empty()) return "";
  if (line <= 0) return file;
  return str(file, ":", line, ":", column);
}

static std::string compose(const SourceLocation& w, const std::string& msg) {
  std::string loc = w.to_string();
  return loc.empty() ? msg : loc + ": " + msg;
}

ConfigError::ConfigError(ConfigErrorKind kind, std::string key_path, SourceLocation where, const std::string& message)
    : InputError(compose(where, message)),
      kind_(kind),
      key_path_(std::move(key_path)),
      where_(std::move(where)),
      message_(message) {}

}  // namespace grpo::config
