#include "grpo/config/reflect.h"

#include <charconv>
#include <cmath>

#include "grpo/util/strings.h"

namespace grpo::config {

bool Range::contains(double x) const {
  if (std::isnan(x)) return !min && !max;
  if (min && (min_exclusive ? !(x > *min) : !(x >= *min))) return false;
  if (max && (max_exclusive ? !(x < *max) : !(x <= *max))) return false;
  return true;
}

std::string Range::describe(bool integer) const {
  auto num = [integer](double v) { return integer ? std::to_string(static_cast<long long>(v)) : detail::format_double(v); };
  if (min && max) return str("in ", min_exclusive ? "(" : "[", num(*min), ", ", num(*max), max_exclusive ? ")" : "]");
  if (min) return str(min_exclusive ? "> " : ">= ", num(*min));
  if (max) return str(max_exclusive ? "< " : "<= ", num(*max));
  return "";
}

namespace detail {

std::string join_path(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

SourceLocation mark_of(const YAML::Node& n, const std::string& file) {
  SourceLocation w;
  w.file = file;
  YAML::Mark m = n.Mark();
  if (!m.is_null() && m.line >= 0) {
    w.line = m.line + 1;
    w.column = m.column + 1;
  }
  return w;
}

std::string describe_node(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null (an empty value)";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "'" + n.Scalar() + "'";
}

void throw_error(ConfigErrorKind kind, const std::string& path, const SourceLocation& where, const std::string& message) {
  throw ConfigError(kind, path, where, message);
}

void throw_unknown_key(const std::string& path, std::string_view key, const std::vector<std::string>& valid,
                       const SourceLocation& where) {
  std::string full = join_path(path, key);
  std::string msg = "unknown key '" + full + "'";
  std::string guess = closest_match(key, valid);
  if (!guess.empty()) msg += "; did you mean '" + join_path(path, guess) + "'?";
  else msg += "; valid keys" + std::string(path.empty() ? "" : " under '" + path + "'") + ": " + join(valid, ", ");
  throw ConfigError(ConfigErrorKind::UNKNOWN_KEY, full, where, msg);
}

static const std::string& scalar_or_throw(const YAML::Node& n, const std::string& path, const std::string& file,
                                          const std::string& expected) {
  if (!n.IsScalar())
    throw ConfigError(ConfigErrorKind::WRONG_TYPE, path, mark_of(n, file),
                      path + " must be " + expected + ", got " + describe_node(n));
  return n.Scalar();
}

bool parse_bool(const YAML::Node& n, const std::string& path, const std::string& file) {
  const std::string& s = scalar_or_throw(n, path, file, "a boolean (true or false)");
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  throw ConfigError(ConfigErrorKind::WRONG_TYPE, path, mark_of(n, file),
                    path + " must be a boolean (true or false), got '" + s + "'");
}

int64_t parse_int(const YAML::Node& n, const std::string& path, const std::string& file, const Range& r, int64_t lo,
                  int64_t hi) {
  std::string expected = "an integer" + (r.describe(true).empty() ? "" : " " + r.describe(true));
  const std::string& s = scalar_or_throw(n, path, file, expected);
  int64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && p == e && (v < lo || v > hi)))
    throw ConfigError(ConfigErrorKind::OUT_OF_RANGE, path, mark_of(n, file),
                      path + " must be " + expected + ", got " + s + " (too large for its type)");
  if (ec != std::errc() || p != e || s.empty())
    throw ConfigError(ConfigErrorKind::WRONG_TYPE, path, mark_of(n, file), path + " must be " + expected + ", got '" + s + "'");
  if (!r.contains(static_cast<double>(v)))
    throw ConfigError(ConfigErrorKind::OUT_OF_RANGE, path, mark_of(n, file), path + " must be " + expected + ", got " + s);
  return v;
}

double parse_double(const YAML::Node& n, const std::string& path, const std::string& file, const Range& r) {
  std::string expected = "a number" + (r.describe().empty() ? "" : " " + r.describe());
  const std::string& s = scalar_or_throw(n, path, file, expected);
  double v = 0;
  if (s == ".inf" || s == "+.inf" || s == ".Inf") v = INFINITY;
  else if (s == "-.inf" || s == "-.Inf") v = -INFINITY;
  else if (s == ".nan" || s == ".NaN") v = NAN;
  else {
    const char* b = s.data();
    const char* e = s.data() + s.size();
    if (b != e && *b == '+') ++b;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e || s.empty())
      throw ConfigError(ConfigErrorKind::WRONG_TYPE, path, mark_of(n, file), path + " must be " + expected + ", got '" + s + "'");
  }
  if (!r.contains(v))
    throw ConfigError(ConfigErrorKind::OUT_OF_RANGE, path, mark_of(n, file), path + " must be " + expected + ", got " + s);
  return v;
}

std::string parse_string(const YAML::Node& n, const std::string& path, const std::string& file) {
  if (n.IsNull()) return "";  // `key:` or `key: null` reads as the empty string
  return scalar_or_throw(n, path, file, "a string");
}

std::string parse_enum_name(const YAML::Node& n, const std::string& path, const std::string& file,
                            const std::vector<std::string>& names) {
  std::string expected = "one of " + join(names, ", ");
  const std::string& s = scalar_or_throw(n, path, file, expected);
  for (const auto& name : names)
    if (name == s) return s;
  std::string msg = path + " must be " + expected + ", got '" + s + "'";
  std::string guess = closest_match(s, names);
  if (!guess.empty()) msg += "; did you mean '" + guess + "'?";
  throw ConfigError(ConfigErrorKind::BAD_VALUE, path, mark_of(n, file), msg);
}

std::string format_double(double x) {
  if (std::isnan(x)) return ".nan";
  if (std::isinf(x)) return x > 0 ? ".inf" : "-.inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), x);  // shortest round-trip form
  std::string s(buf, p);
  // Keep it visibly a float ("1.0", not "1") so a reader of the YAML sees the type.
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

}  // namespace detail
}  // namespace grpo::config
