#pragma once
// Counts dispatcher calls by operator name while alive, through a thread-local RecordFunction
// callback (thread-local callbacks travel with the autograd engine's thread-local state, so the
// ops of backward are counted too). What ran, seen from the dispatcher, not from a flag the code
// under test sets itself.
#include <ATen/record_function.h>

#include <map>
#include <string>

namespace grpo::model::testing {

class OpCounter {
 public:
  OpCounter() {
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          ++counts()[fn.name()];
          return nullptr;
        })
            .needsInputs(false)
            .scopes({at::RecordScope::FUNCTION}));
    counts().clear();
  }
  ~OpCounter() { at::removeCallback(handle_); }
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;
  static std::map<std::string, int>& counts() {
    thread_local std::map<std::string, int> c;
    return c;
  }
  /// Calls of ops whose name starts with `prefix` (e.g. "grpo::moe").
  int with_prefix(const std::string& prefix) const {
    int n = 0;
    for (const auto& [name, c] : counts())
      if (name.rfind(prefix, 0) == 0) n += c;
    return n;
  }
  int operator[](const std::string& name) const {
    auto it = counts().find(name);
    return it == counts().end() ? 0 : it->second;
  }

 private:
  at::CallbackHandle handle_;
};

}  // namespace grpo::model::testing
