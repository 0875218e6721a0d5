// LR schedules against transformers' get_*_schedule_with_warmup (tests/train/data/loss_refs.json,
// "schedule_cases", made by scripts/make_loss_refs.py from a real AdamW + LambdaLR).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/train/schedule.h"
#include "grpo/util/error.h"

namespace {

using grpo::config::LrScheduler;
using grpo::train::LrSchedule;

TEST(Schedule, MatchesTransformers) {
  std::ifstream f(std::string(GRPO_SOURCE_DIR) + "/tests/train/data/loss_refs.json");
  auto refs = nlohmann::json::parse(f);
  int n = 0;
  for (const auto& c : refs["schedule_cases"]) {
    const std::string kind = c["kind"];
    LrSchedule s(kind == "constant" ? LrScheduler::CONSTANT : kind == "linear" ? LrScheduler::LINEAR : LrScheduler::COSINE,
                 c["warmup_steps"], c["max_steps"]);
    const double base = c["base_lr"];
    const auto& lrs = c["lrs"];
    for (size_t step = 0; step < lrs.size(); ++step, ++n) {
      // transformers multiplies in float64 like we do: 1e-12 relative covers the cos() rounding.
      EXPECT_NEAR(base * s.factor(static_cast<int64_t>(step)), lrs[step].get<double>(), 1e-12 * base)
          << kind << " warmup " << c["warmup_steps"] << " step " << step;
    }
  }
  EXPECT_GT(n, 90);
}

TEST(Schedule, HandValuesAndWarmupFromConfig) {
  LrSchedule lin(LrScheduler::LINEAR, 2, 10);
  EXPECT_DOUBLE_EQ(lin.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(lin.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(lin.factor(2), 1.0);
  EXPECT_DOUBLE_EQ(lin.factor(6), 0.5);  // (10 - 6) / (10 - 2)
  EXPECT_DOUBLE_EQ(lin.factor(12), 0.0);
  LrSchedule cos(LrScheduler::COSINE, 0, 4);
  EXPECT_DOUBLE_EQ(cos.factor(2), 0.5);  // half way: cos(pi/2) = 0
  grpo::config::OptimizerConfig opt;
  opt.warmup_ratio = 0.1;
  EXPECT_EQ(LrSchedule::from_config(opt, 95).warmup_steps(), 10);  // ceil(9.5)
  opt.warmup_steps = 3;
  EXPECT_EQ(LrSchedule::from_config(opt, 95).warmup_steps(), 3);
  EXPECT_THROW(LrSchedule(LrScheduler::LINEAR, -1, 10), grpo::InputError);
  EXPECT_THROW(LrSchedule(LrScheduler::LINEAR, 0, 0), grpo::InputError);
}

}  // namespace
