#pragma once
// Reflection for config structs. Each struct lists its fields once, in a visit() member:
//
//   struct RolloutConfig {
//     int max_completion_length = 256;
//     template <class V> void visit(V& v) {
//       v("max_completion_length", max_completion_length, "Max new tokens per completion.", at_least(1));
//     }
//   };
//
// and three visitors walk that list: Loader (YAML -> struct, strict), Dumper (struct -> YAML) and
// Documenter (rows of the config reference). Defaults live in the member initialisers, so they are
// written once and the docs cannot drift from the code (torchtitan's typed config classes).
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "grpo/config/error.h"

namespace grpo::config {

/// Allowed numeric range of a field; unset bounds are open.
struct Range {
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  bool contains(double x) const;
  /// ">= 2", "> 0", "in [0, 1]", "" when unbounded; integer fields print bounds without ".0".
  std::string describe(bool integer = false) const;
};
inline Range at_least(double v) { return Range{v, std::nullopt, false, false}; }
inline Range greater_than(double v) { return Range{v, std::nullopt, true, false}; }
inline Range between(double lo, double hi) { return Range{lo, hi, false, false}; }
/// (lo, hi]: e.g. top_p.
inline Range above_up_to(double lo, double hi) { return Range{lo, hi, true, false}; }

/// Enum names for the config. Specialise with a static `items` array of {value, "name"} pairs.
template <class E>
struct EnumNames;

template <class E>
concept ConfigEnum = std::is_enum_v<E> && requires { EnumNames<E>::items; };

template <ConfigEnum E>
std::string_view enum_name(E e) {
  for (const auto& [v, n] : EnumNames<E>::items)
    if (v == e) return n;
  return "?";
}
template <ConfigEnum E>
std::vector<std::string> enum_names() {
  std::vector<std::string> out;
  for (const auto& [v, n] : EnumNames<E>::items) out.emplace_back(n);
  return out;
}
template <ConfigEnum E>
std::optional<E> enum_from_name(std::string_view s) {
  for (const auto& [v, n] : EnumNames<E>::items)
    if (n == s) return v;
  return std::nullopt;
}

/// Where each key of the resolved config was last set (for cross-field validation errors).
using Provenance = std::map<std::string, SourceLocation>;

struct NameCollector;
template <class T>
concept Reflected = std::is_class_v<T> && requires(T& t, NameCollector& v) { t.visit(v); };

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};

/// Collects the field names a struct declares (for "did you mean").
struct NameCollector {
  std::vector<std::string> names;
  template <class T>
  void operator()(const char* name, T&, const char*, Range = {}) { names.emplace_back(name); }
};

namespace detail {
std::string join_path(const std::string& prefix, std::string_view key);
SourceLocation mark_of(const YAML::Node& n, const std::string& file);
std::string describe_node(const YAML::Node& n);  // the value as found, for messages
[[noreturn]] void throw_unknown_key(const std::string& path, std::string_view key,
                                    const std::vector<std::string>& valid, const SourceLocation& where);
[[noreturn]] void throw_error(ConfigErrorKind kind, const std::string& path, const SourceLocation& where,
                              const std::string& message);
bool parse_bool(const YAML::Node& n, const std::string& path, const std::string& file);
int64_t parse_int(const YAML::Node& n, const std::string& path, const std::string& file, const Range& r,
                  int64_t lo, int64_t hi);
double parse_double(const YAML::Node& n, const std::string& path, const std::string& file, const Range& r);
std::string parse_string(const YAML::Node& n, const std::string& path, const std::string& file);
std::string parse_enum_name(const YAML::Node& n, const std::string& path, const std::string& file,
                            const std::vector<std::string>& names);
std::string format_double(double x);  // shortest text that reads back to the same double
}  // namespace detail

/// Applies one YAML mapping onto a struct: keys present overwrite fields, absent keys keep their
/// current value (so base files, later files and overrides layer in order, the later winning).
/// Throws ConfigError on any unknown key, wrong type or out-of-range value.
class Loader {
 public:
  Loader(const YAML::Node& map, std::string path, std::string file, Provenance* prov)
      : map_(map), path_(std::move(path)), file_(std::move(file)), prov_(prov) {}

  template <class T>
  void operator()(const char* name, T& field, const char*, Range r = {}) {
    declared_.emplace_back(name);
    YAML::Node child = map_[name];
    if (!child.IsDefined()) return;
    std::string path = detail::join_path(path_, name);
    apply(child, field, path, r);
  }

  /// Call after visit(): throws UNKNOWN_KEY for any key the struct did not declare.
  void check_unknown_keys() const {
    for (auto it = map_.begin(); it != map_.end(); ++it) {
      std::string key = it->first.Scalar();
      bool known = false;
      for (const auto& d : declared_) known = known || d == key;
      if (!known) detail::throw_unknown_key(path_, key, declared_, detail::mark_of(it->first, file_));
    }
  }

  template <class T>
  void apply(const YAML::Node& n, T& field, const std::string& path, const Range& r) {
    if (prov_) (*prov_)[path] = detail::mark_of(n, file_);
    if constexpr (std::is_same_v<T, bool>) {
      field = detail::parse_bool(n, path, file_);
    } else if constexpr (std::is_integral_v<T>) {
      field = static_cast<T>(detail::parse_int(n, path, file_, r, static_cast<int64_t>(std::numeric_limits<T>::min()),
                                               static_cast<int64_t>(std::numeric_limits<T>::max())));
    } else if constexpr (std::is_floating_point_v<T>) {
      field = static_cast<T>(detail::parse_double(n, path, file_, r));
    } else if constexpr (std::is_same_v<T, std::string>) {
      field = detail::parse_string(n, path, file_);
    } else if constexpr (ConfigEnum<T>) {
      std::string name = detail::parse_enum_name(n, path, file_, enum_names<T>());
      field = *enum_from_name<T>(name);
    } else if constexpr (is_optional<T>::value) {
      if (n.IsNull()) {
        field.reset();
      } else {
        typename T::value_type v = field ? *field : typename T::value_type{};
        apply(n, v, path, r);
        field = std::move(v);
      }
    } else if constexpr (is_vector<T>::value) {
      apply_vector(n, field, path, r);
    } else if constexpr (Reflected<T>) {
      if (!n.IsMap())
        detail::throw_error(ConfigErrorKind::WRONG_TYPE, path, detail::mark_of(n, file_),
                            path + " must be a mapping of keys, got " + detail::describe_node(n));
      Loader sub(n, path, file_, prov_);
      field.visit(sub);
      sub.check_unknown_keys();
    } else {
      static_assert(sizeof(T) == 0, "config field of unsupported type");
    }
  }

 private:
  template <class T>
  void apply_vector(const YAML::Node& n, std::vector<T>& field, const std::string& path, const Range& r) {
    if (n.IsSequence()) {
      std::vector<T> out(n.size());
      for (size_t i = 0; i < n.size(); ++i) apply(n[i], out[i], detail::join_path(path, std::to_string(i)), r);
      field = std::move(out);
    } else if (n.IsMap()) {
      // A patch of single elements by index, as written by overrides: `reward.functions.0.weight=2`.
      for (auto it = n.begin(); it != n.end(); ++it) {
        const std::string key = it->first.Scalar();
        size_t idx = 0;
        bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
        if (numeric) idx = std::stoul(key);
        if (!numeric || idx >= field.size())
          detail::throw_error(ConfigErrorKind::UNKNOWN_KEY, detail::join_path(path, key), detail::mark_of(it->first, file_),
                              detail::join_path(path, key) + ": " + path + " is a list of " + std::to_string(field.size()) +
                                  " element(s); index with 0.." + std::to_string(field.size() ? field.size() - 1 : 0));
        apply(it->second, field[idx], detail::join_path(path, key), r);
      }
    } else {
      detail::throw_error(ConfigErrorKind::WRONG_TYPE, path, detail::mark_of(n, file_),
                          path + " must be a list, got " + detail::describe_node(n));
    }
  }

  const YAML::Node& map_;
  std::string path_;
  std::string file_;
  Provenance* prov_;
  std::vector<std::string> declared_;
};

/// Writes a struct as YAML (block style), every field included, so the output is the resolved
/// config with defaults filled in and reads back to the same values.
class Dumper {
 public:
  explicit Dumper(YAML::Emitter& out) : out_(out) {}
  template <class T>
  void operator()(const char* name, T& field, const char* = "", Range = {}) {
    out_ << YAML::Key << name << YAML::Value;
    emit(field);
  }
  template <class T>
  void emit(T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      out_ << (v ? "true" : "false");
    } else if constexpr (std::is_integral_v<T>) {
      out_ << static_cast<long long>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
      out_ << detail::format_double(static_cast<double>(v));
    } else if constexpr (std::is_same_v<T, std::string>) {
      out_ << YAML::DoubleQuoted << v;
    } else if constexpr (ConfigEnum<T>) {
      out_ << std::string(enum_name(v));
    } else if constexpr (is_optional<T>::value) {
      if (v) emit(*v); else out_ << YAML::Null;
    } else if constexpr (is_vector<T>::value) {
      if (v.empty()) { out_ << YAML::Flow << YAML::BeginSeq << YAML::EndSeq; return; }
      out_ << YAML::BeginSeq;
      for (auto& e : v) emit(e);
      out_ << YAML::EndSeq;
    } else if constexpr (Reflected<T>) {
      out_ << YAML::BeginMap;
      v.visit(*this);
      out_ << YAML::EndMap;
    }
  }

 private:
  YAML::Emitter& out_;
};

/// One row of the config reference.
struct DocRow {
  std::string key;          // full dotted path; list elements appear as "functions[]"
  std::string type;         // "int", "float", "bool", "string", "enum: a | b", "list of ...", ...
  std::string default_value;
  std::string range;        // Range::describe()
  std::string doc;
};

/// Walks a default-constructed struct and lists every leaf field with its type, default and doc.
class Documenter {
 public:
  explicit Documenter(std::string prefix = "") : prefix_(std::move(prefix)) {}
  std::vector<DocRow> rows;

  template <class T>
  void operator()(const char* name, T& field, const char* doc, Range r = {}) {
    std::string path = detail::join_path(prefix_, name);
    describe(path, field, doc, r);
  }

 private:
  template <class T>
  static std::string type_name() {
    if constexpr (std::is_same_v<T, bool>) return "bool";
    else if constexpr (std::is_integral_v<T>) return "int";
    else if constexpr (std::is_floating_point_v<T>) return "float";
    else if constexpr (std::is_same_v<T, std::string>) return "string";
    else if constexpr (ConfigEnum<T>) {
      std::string s = "enum: ";
      auto names = enum_names<T>();
      for (size_t i = 0; i < names.size(); ++i) s += (i ? " | " : "") + names[i];
      return s;
    } else if constexpr (is_optional<T>::value) return type_name<typename T::value_type>() + " or null";
    else if constexpr (is_vector<T>::value) return "list of " + type_name<typename T::value_type>();
    else return "mapping";
  }
  template <class T>
  static std::string value_text(T& v) {
    YAML::Emitter e;
    e << YAML::Flow;
    Dumper d(e);
    d.emit(v);
    return e.c_str();
  }
  template <class T>
  void describe(const std::string& path, T& field, const char* doc, const Range& r) {
    if constexpr (Reflected<T>) {
      Documenter sub(path);
      field.visit(sub);
      rows.insert(rows.end(), sub.rows.begin(), sub.rows.end());
    } else if constexpr (is_vector<T>::value) {
      if constexpr (Reflected<typename T::value_type>) {
        rows.push_back({path, "list of mappings", value_text(field), "", doc});
        typename T::value_type elem{};
        describe_element(path + "[]", elem);
      } else {
        rows.push_back({path, type_name<T>(), value_text(field), r.describe(), doc});
      }
    } else {
      rows.push_back({path, type_name<T>(), value_text(field), r.describe(std::is_integral_v<T>), doc});
    }
  }
  template <class T>
  void describe_element(const std::string& path, T& elem) {
    if constexpr (requires { elem.document_all(std::declval<Documenter&>()); }) {
      Documenter sub(path);
      elem.document_all(sub);
      rows.insert(rows.end(), sub.rows.begin(), sub.rows.end());
    } else {
      Documenter sub(path);
      elem.visit(sub);
      rows.insert(rows.end(), sub.rows.begin(), sub.rows.end());
    }
  }
  std::string prefix_;
};

}  // namespace grpo::config
