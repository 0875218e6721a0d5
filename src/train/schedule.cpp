#include "grpo/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "grpo/util/error.h"

namespace grpo::train {

LrSchedule::LrSchedule(config::LrScheduler kind, int64_t warmup_steps, int64_t total_steps)
    : kind_(kind), warmup_(warmup_steps), total_(total_steps) {
  GRPO_REQUIRE(warmup_steps >= 0, "lr schedule: warmup_steps must be >= 0, got ", warmup_steps);
  GRPO_REQUIRE(total_steps >= 1, "lr schedule: total steps must be >= 1, got ", total_steps);
}

LrSchedule LrSchedule::from_config(const config::OptimizerConfig& opt, int64_t max_steps) {
  const int64_t warmup = opt.warmup_steps > 0
                             ? opt.warmup_steps
                             : static_cast<int64_t>(std::ceil(static_cast<double>(max_steps) * opt.warmup_ratio));
  return LrSchedule(opt.lr_scheduler_type, warmup, max_steps);
}

double LrSchedule::factor(int64_t step) const {
  if (step < warmup_) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_));
  const double span = static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  switch (kind_) {
    case config::LrScheduler::CONSTANT:
      return 1.0;
    case config::LrScheduler::LINEAR:
      return std::max(0.0, static_cast<double>(total_ - step) / span);
    case config::LrScheduler::COSINE: {
      const double progress = static_cast<double>(step - warmup_) / span;
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
    }
  }
  return 1.0;
}

}  // namespace grpo::train
