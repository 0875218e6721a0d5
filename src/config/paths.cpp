#include "grpo/config/paths.h"

#include <filesystem>

namespace grpo::config {

void check_paths_exist(const Config& c, const Provenance& prov) {
  const bool task = c.task.name != TaskName::NONE;
  const bool tokenizer_trained = task && c.task.tokenizer_vocab_size > 0;
  const std::pair<const char*, const std::string*> files[] = {
      {"model.path", &c.model.path},
      {"tokenizer.path", tokenizer_trained ? nullptr : &c.tokenizer.path},
      {"data.train_file", task ? nullptr : &c.data.train_file},
      {"data.eval_file", task ? nullptr : &c.data.eval_file},
  };
  for (const auto& [key, path] : files) {
    if (!path || path->empty()) continue;
    std::error_code ec;
    if (std::filesystem::exists(*path, ec)) continue;
    auto it = prov.find(key);
    throw ConfigError(ConfigErrorKind::BAD_VALUE, key, it == prov.end() ? SourceLocation{} : it->second,
                      str(key, ": ", *path, ": no such file or directory"));
  }
}

}  // namespace grpo::config
