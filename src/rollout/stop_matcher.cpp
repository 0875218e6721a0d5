#include "grpo/rollout/stop_matcher.h"

#include <algorithm>

#include "grpo/util/error.h"

namespace grpo::rollout {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i) {
    GRPO_REQUIRE(!stops_[i].empty(), "stop string ", i, " is empty");
    longest_ = std::max(longest_, stops_[i].size());
  }
}

int64_t StopMatcher::find(const std::string& text, size_t old_size, size_t floor) const {
  int64_t best = -1;
  for (const auto& s : stops_) {
    // An occurrence that ended within the old text was reported by an earlier call.
    const size_t from = std::max(floor, old_size + 1 > s.size() ? old_size + 1 - s.size() : size_t{0});
    const size_t pos = text.find(s, from);
    if (pos != std::string::npos && (best < 0 || static_cast<int64_t>(pos) < best)) best = static_cast<int64_t>(pos);
  }
  return best;
}

}  // namespace grpo::rollout
