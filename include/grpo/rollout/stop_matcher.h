#pragma once
// Stop strings over a growing text: finds the earliest occurrence of any stop string, looking only
// at the part of the text that new characters can complete (the last len(stop) - 1 old bytes plus
// the new ones), so a whole completion costs O(length * stops), not O(length^2).
#include <cstdint>
#include <string>
#include <vector>

namespace grpo::rollout {

class StopMatcher {
 public:
  /// Throws grpo::InputError when a stop string is empty.
  explicit StopMatcher(std::vector<std::string> stops);

  bool empty() const { return stops_.empty(); }

  /// `text` is the whole text so far, of which the first `old_size` bytes were seen by earlier
  /// calls. Returns the byte offset where the earliest stop string starts at or after `floor`
  /// (text before it was injected by a tool and cannot hold a stop string), or -1.
  int64_t find(const std::string& text, size_t old_size, size_t floor = 0) const;

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
};

}  // namespace grpo::rollout
