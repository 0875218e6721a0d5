#pragma once
// Sets or unsets environment variables for one scope and restores them after (tests that point
// GRPO_DATA_DIR and similar at scratch directories must not leak them into later tests).
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace grpo::testing {

struct EnvGuard {
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~EnvGuard() {
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
      if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else ::unsetenv(it->first.c_str());
    }
  }
};

}  // namespace grpo::testing
