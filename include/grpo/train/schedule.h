#pragma once
// Learning-rate schedules with linear warmup, as transformers' get_constant_schedule_with_warmup,
// get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup (num_cycles = 0.5) compute
// them (transformers/optimization.py, _get_*_schedule_with_warmup_lr_lambda).
#include <cstdint>

#include "grpo/config/train_config.h"

namespace grpo::train {

/// Multiplier of the base learning rate.
class LrSchedule {
 public:
  /// kind: constant / linear / cosine; warmup_steps >= 0; total_steps >= 1 (trainer.max_steps).
  /// Throws grpo::InputError on negative warmup or non-positive total.
  LrSchedule(config::LrScheduler kind, int64_t warmup_steps, int64_t total_steps);

  /// From the optimizer config: warmup_steps when > 0, else ceil(warmup_ratio * max_steps)
  /// (transformers' TrainingArguments.get_warmup_steps).
  static LrSchedule from_config(const config::OptimizerConfig& opt, int64_t max_steps);

  /// Multiplier applied before optimizer step `step` (0-based: the first update uses factor(0)):
  ///   warmup:   step / max(1, warmup)                                       for step < warmup
  ///   constant: 1
  ///   linear:   max(0, (total - step) / max(1, total - warmup))
  ///   cosine:   max(0, 0.5 * (1 + cos(pi * (step - warmup) / max(1, total - warmup))))
  double factor(int64_t step) const;

  int64_t warmup_steps() const { return warmup_; }
  int64_t total_steps() const { return total_; }
  config::LrScheduler kind() const { return kind_; }

 private:
  config::LrScheduler kind_;
  int64_t warmup_;
  int64_t total_;
};

}  // namespace grpo::train
