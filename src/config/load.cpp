// Loading: files (with includes), then overrides, then cross-field validation.
#include <filesystem>
#include <regex>

#include "grpo/config/config.h"
#include "grpo/util/fs.h"
#include "grpo/util/strings.h"

namespace grpo::config {
namespace {

namespace sfs = std::filesystem;

SourceLocation file_loc(const std::string& file) { return SourceLocation{file, 0, 0}; }

// Duplicate keys are legal for yaml-cpp but almost always a mistake; reject them everywhere.
void check_duplicates(const YAML::Node& n, const std::string& path, const std::string& file) {
  if (n.IsMap()) {
    std::vector<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      for (const auto& s : seen)
        if (s == key)
          throw ConfigError(ConfigErrorKind::PARSE_ERROR, detail::join_path(path, key), detail::mark_of(it->first, file),
                            "duplicate key '" + detail::join_path(path, key) + "'");
      seen.push_back(key);
      check_duplicates(it->second, detail::join_path(path, key), file);
    }
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) check_duplicates(n[i], detail::join_path(path, std::to_string(i)), file);
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SourceLocation w = file_loc(file);
    if (!e.mark.is_null()) {
      w.line = e.mark.line + 1;
      w.column = e.mark.column + 1;
    }
    throw ConfigError(ConfigErrorKind::PARSE_ERROR, "", w, "malformed YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull())
    throw ConfigError(ConfigErrorKind::FILE_ERROR, "", file_loc(file), "config file is empty");
  if (!root.IsMap())
    throw ConfigError(ConfigErrorKind::PARSE_ERROR, "", detail::mark_of(root, file),
                      "the top level of a config must be a mapping of sections (model:, grpo:, ...), got " +
                          detail::describe_node(root));
  check_duplicates(root, "", file);
  return root;
}

// Base files named by `include:` (a string or list) or Hydra's `defaults:` (a list).
std::vector<std::pair<std::string, SourceLocation>> take_includes(YAML::Node& root, const std::string& file) {
  std::vector<std::pair<std::string, SourceLocation>> out;
  for (const char* key : {"defaults", "include"}) {
    YAML::Node n = root[key];
    if (!n.IsDefined()) continue;
    auto add = [&](const YAML::Node& e, const std::string& path) {
      if (!e.IsScalar() || e.Scalar().empty())
        throw ConfigError(ConfigErrorKind::WRONG_TYPE, path, detail::mark_of(e, file),
                          path + " must be a file name or a list of file names, got " + detail::describe_node(e));
      out.emplace_back(e.Scalar(), detail::mark_of(e, file));
    };
    if (n.IsSequence()) {
      for (size_t i = 0; i < n.size(); ++i) add(n[i], std::string(key) + "." + std::to_string(i));
    } else {
      add(n, key);
    }
    root.remove(key);
  }
  return out;
}

std::string read_config_file(const std::string& path, const SourceLocation& included_from) {
  std::error_code ec;
  auto where = included_from.file.empty() ? file_loc(path) : included_from;
  std::string prefix = included_from.file.empty() ? "" : "included file '" + path + "': ";
  if (!sfs::exists(path, ec))
    throw ConfigError(ConfigErrorKind::FILE_ERROR, "", where, prefix + "config file not found: '" + path + "'");
  if (sfs::is_directory(path, ec))
    throw ConfigError(ConfigErrorKind::FILE_ERROR, "", where, prefix + "'" + path + "' is a directory, expected a YAML file");
  try {
    return fs::read_file(path);
  } catch (const InputError& e) {
    throw ConfigError(ConfigErrorKind::FILE_ERROR, "", where, prefix + e.what());
  }
}

void apply_root(const YAML::Node& root, Config& cfg, const std::string& file, Provenance& prov) {
  Loader loader(root, "", file, &prov);
  cfg.visit(loader);
  loader.check_unknown_keys();
}

void load_layer(const std::string& text, const std::string& file, const sfs::path& base_dir, LoadedConfig& out,
                std::vector<std::string>& stack) {
  YAML::Node root = parse_yaml(text, file);
  for (const auto& [inc, where] : take_includes(root, file)) {
    sfs::path p = sfs::path(inc).is_absolute() ? sfs::path(inc) : base_dir / inc;
    std::error_code ec;
    if (!sfs::exists(p, ec) && sfs::exists(sfs::path(p.string() + ".yaml"), ec)) p = p.string() + ".yaml";
    std::string text_inc = read_config_file(p.string(), where);
    std::string canon = sfs::weakly_canonical(p, ec).string();
    for (const auto& s : stack)
      if (s == canon)
        throw ConfigError(ConfigErrorKind::INCLUDE_CYCLE, "include", where,
                          "include cycle: " + join(stack, " -> ") + " -> " + canon);
    stack.push_back(canon);
    load_layer(text_inc, p.string(), p.parent_path(), out, stack);
    stack.pop_back();
  }
  apply_root(root, out.config, file, out.provenance);
  out.files.push_back(file);
}

void apply_override(const std::string& text, LoadedConfig& out) {
  const std::string where = "override '" + text + "'";
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(ConfigErrorKind::BAD_OVERRIDE, "", file_loc("command line"),
                      "override '" + text + "' must look like key.path=value (e.g. grpo.beta=0.04)");
  std::string key = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  static const std::regex key_re("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z0-9_]+)*$");
  if (!std::regex_match(key, key_re))
    throw ConfigError(ConfigErrorKind::BAD_OVERRIDE, key, file_loc("command line"),
                      "override '" + text + "': '" + key + "' is not a dotted key path (letters, digits, _ and .)");
  YAML::Node leaf;
  try {
    leaf = value.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw ConfigError(ConfigErrorKind::BAD_OVERRIDE, key, file_loc("command line"),
                      "override '" + text + "': the value is not valid YAML: " + e.msg);
  }
  auto parts = split(key, '.');
  YAML::Node root(YAML::NodeType::Map);
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next(YAML::NodeType::Map);
    cur[parts[i]] = next;
    cur.reset(next);  // yaml-cpp nodes are handles: reset() re-points without assigning through
  }
  cur[parts.back()] = leaf;
  apply_root(root, out.config, where, out.provenance);
}

// "~/" and "$GRPO_DATA_DIR/" in the file and directory fields (util/fs.h expand_path), so a
// shipped config can name set-up-time assets (e.g. the SmolLM2 GGUF) on any machine.
void expand_paths(Config& c) {
  for (std::string* p : {&c.model.path, &c.tokenizer.path, &c.data.train_file, &c.data.eval_file, &c.task.source,
                         &c.trainer.output_dir, &c.checkpoint.resume})
    *p = fs::expand_path(*p);
}

}  // namespace

LoadedConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  LoadedConfig out;
  std::string text = read_config_file(path, {});
  std::error_code ec;
  std::vector<std::string> stack{sfs::weakly_canonical(path, ec).string()};
  load_layer(text, path, sfs::path(path).parent_path(), out, stack);
  for (const auto& o : overrides) apply_override(o, out);
  expand_paths(out.config);
  validate(out.config, out.provenance);
  return out;
}

LoadedConfig load_config_string(const std::string& yaml, const std::string& name,
                                const std::vector<std::string>& overrides) {
  LoadedConfig out;
  std::vector<std::string> stack{name};
  load_layer(yaml, name, sfs::current_path(), out, stack);
  for (const auto& o : overrides) apply_override(o, out);
  expand_paths(out.config);
  validate(out.config, out.provenance);
  return out;
}

std::string dump_config(const Config& cfg) {
  Config copy = cfg;  // visit() is non-const; dumping never changes values
  YAML::Emitter e;
  e.SetIndent(2);
  Dumper d(e);
  d.emit(copy);
  return std::string(e.c_str()) + "\n";
}

void write_resolved_config(const Config& cfg, const std::string& dir) {
  std::error_code ec;
  sfs::create_directories(dir, ec);
  if (ec) throw InputError("cannot create run directory '" + dir + "': " + ec.message());
  fs::atomic_write((sfs::path(dir) / "config.yaml").string(), dump_config(cfg));
}

std::vector<DocRow> document_config() {
  Config cfg;
  Documenter d;
  cfg.visit(d);
  return d.rows;
}

}  // namespace grpo::config
