#include "grpo/train/async_rollout.h"

#include <algorithm>

namespace grpo::train {

int64_t AsyncSchedule::version_of(int64_t g) const {
  // The last checkpoint step at or before g: the pipeline drains there, so a checkpoint taken
  // after step b - 1 never leaves a generation >= b depending on weights older than b.
  int64_t drained = start;
  if (save_every > 0 && g > start) drained = start + (g - start) / save_every * save_every;
  return std::max(g - max_staleness, drained);
}

bool AsyncSchedule::needed(int64_t v) const {
  // version_of is non-decreasing and version_of(g) <= g: only g in [v, v + max_staleness] can use v.
  for (int64_t g = v; g < max_steps && g <= v + max_staleness; ++g)
    if (version_of(g) == v) return true;
  return false;
}

}  // namespace grpo::train
