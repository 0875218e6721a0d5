#include "grpo/reward/reward_set.h"

#include <cmath>
#include <map>

#include "grpo/reward/registry.h"
#include "grpo/util/error.h"

namespace grpo::reward {

RewardSet RewardSet::from_config(const config::RewardConfig& cfg) {
  GRPO_REQUIRE(!cfg.functions.empty(), "reward.functions is empty: list at least one reward function, e.g. "
                                       "[{name: format, weight: 0.2}, {name: math_answer, weight: 1.0}]");
  RewardSet set;
  for (size_t i = 0; i < cfg.functions.size(); ++i) {
    const auto& e = cfg.functions[i];
    GRPO_REQUIRE(std::isfinite(e.weight), "reward.functions.", i, ".weight must be finite, got ", e.weight);
    try {
      set.add(make_reward_function(e, cfg), e.weight);
    } catch (const InputError& err) {
      throw InputError(str("reward.functions.", i, " (", config::enum_name(e.name), "): ", err.what()));
    }
  }
  return set;
}

void RewardSet::add(std::unique_ptr<RewardFunction> fn, double weight) {
  GRPO_CHECK(fn != nullptr);
  std::string base = fn->name(), name = base;
  for (int k = 2; [&] {
         for (const auto& n : names_)
           if (n == name) return true;
         return false;
       }();
       ++k)
    name = base + "_" + std::to_string(k);
  names_.push_back(name);
  weights_.push_back(weight);
  functions_.push_back(std::move(fn));
}

RewardSetResult RewardSet::score(const std::vector<RewardInput>& batch) const {
  const size_t n = batch.size();
  RewardSetResult out;
  out.names = names_;
  out.weights = weights_;
  out.total.assign(n, 0.0f);
  out.masked.assign(n, 0);
  std::vector<std::vector<std::string>> problems(functions_.size());
  for (size_t f = 0; f < functions_.size(); ++f) {
    RewardScores s = functions_[f]->score_batch(batch);
    GRPO_CHECK(s.values.size() == n && s.problems.size() == n && s.masked.size() == n, "reward function ", names_[f],
               " returned ", s.values.size(), " values for ", n, " rows");
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.values[i])) {
        s.values[i] = 0.0f;
        if (s.problems[i].empty()) s.problems[i] = "non-finite reward replaced by 0";
      }
      out.masked[i] |= s.masked[i];
    }
    for (const auto& [k, v] : s.counters) out.counters[names_[f] + "/" + k] += v;
    out.per_function.push_back(std::move(s.values));
    problems[f] = std::move(s.problems);
  }
  for (size_t i = 0; i < n; ++i) {
    double t = 0.0;  // accumulate in double, round once
    for (size_t f = 0; f < functions_.size(); ++f) t += weights_[f] * out.per_function[f][i];
    out.total[i] = static_cast<float>(t);
    for (size_t f = 0; f < functions_.size(); ++f)
      if (!problems[f][i].empty()) out.problems.push_back({i, names_[f], problems[f][i]});
  }
  return out;
}

}  // namespace grpo::reward
