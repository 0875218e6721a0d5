#include "grpo/rollout/sampling_params.h"

#include <cmath>

#include "grpo/util/error.h"

namespace grpo::rollout {

SamplingParams SamplingParams::from_config(const config::RolloutConfig& cfg) {
  SamplingParams p;
  p.temperature = cfg.temperature;
  p.top_p = cfg.top_p;
  p.top_k = cfg.top_k;
  p.min_p = cfg.min_p;
  p.repetition_penalty = cfg.repetition_penalty;
  p.max_completion_length = cfg.max_completion_length;
  p.stop = cfg.stop;
  p.stop_token_ids.assign(cfg.stop_token_ids.begin(), cfg.stop_token_ids.end());
  return p;
}

void SamplingParams::validate() const {
  auto finite = [](double x) { return std::isfinite(x); };
  GRPO_REQUIRE(finite(temperature) && temperature >= 0, "rollout.temperature = ", temperature,
               ": expected a number >= 0 (0 = greedy)");
  GRPO_REQUIRE(finite(top_p) && top_p > 0 && top_p <= 1, "rollout.top_p = ", top_p, ": expected a number in (0, 1]");
  GRPO_REQUIRE(top_k >= 0, "rollout.top_k = ", top_k, ": expected an integer >= 0 (0 = off)");
  GRPO_REQUIRE(finite(min_p) && min_p >= 0 && min_p <= 1, "rollout.min_p = ", min_p, ": expected a number in [0, 1]");
  GRPO_REQUIRE(finite(repetition_penalty) && repetition_penalty > 0, "rollout.repetition_penalty = ",
               repetition_penalty, ": expected a number > 0 (1 = off)");
  GRPO_REQUIRE(max_completion_length >= 1, "rollout.max_completion_length = ", max_completion_length,
               ": expected an integer >= 1");
  for (size_t i = 0; i < stop.size(); ++i)
    GRPO_REQUIRE(!stop[i].empty(), "rollout.stop.", i, " is empty: a stop string needs at least one character");
  for (size_t i = 0; i < stop_token_ids.size(); ++i)
    GRPO_REQUIRE(stop_token_ids[i] >= 0, "rollout.stop_token_ids.", i, " = ", stop_token_ids[i],
                 ": expected a token id >= 0");
  for (size_t i = 0; i < eos_token_ids.size(); ++i)
    GRPO_REQUIRE(eos_token_ids[i] >= 0, "eos_token_ids.", i, " = ", eos_token_ids[i], ": expected a token id >= 0");
}

}  // namespace grpo::rollout
