#include "grpo/train/group_selection.h"

#include <cmath>

#include "grpo/train/advantages.h"
#include "grpo/util/error.h"

namespace grpo::train {
namespace {

// Appends rows `rows` of `src` to `dst` (a RewardSetResult of the kept rows of several draws):
// scores row by row, problems re-numbered, counters summed (they count work done, kept or not).
void append_scored_rows(reward::RewardSetResult& dst, const reward::RewardSetResult& src, const std::vector<size_t>& rows) {
  if (dst.names.empty()) dst.names = src.names, dst.weights = src.weights, dst.per_function.resize(src.names.size());
  for (size_t r : rows) {
    const size_t at = dst.total.size();
    for (size_t f = 0; f < src.per_function.size(); ++f) dst.per_function[f].push_back(src.per_function[f][r]);
    dst.total.push_back(src.total[r]);
    dst.masked.push_back(src.masked[r]);
    for (const auto& p : src.problems)
      if (p.row == r) dst.problems.push_back({at, p.function, p.message});
  }
  for (const auto& [k, v] : src.counters) dst.counters[k] += v;
}

}  // namespace

RewardTensors reward_tensors(const reward::RewardSetResult& scored, const std::vector<rollout::Completion>& completions) {
  GRPO_REQUIRE(scored.total.size() == completions.size() && scored.masked.size() == completions.size(),
               "reward_tensors: ", scored.total.size(), " scores (", scored.masked.size(), " mask flags) for ",
               completions.size(), " completions");
  const auto n = static_cast<int64_t>(completions.size());
  RewardTensors t{torch::empty({n}, torch::kFloat64), torch::empty({n}, torch::kInt64)};
  auto r = t.rewards.accessor<double, 1>();
  auto pi = t.prompt_index.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    const auto row = static_cast<size_t>(i);
    r[i] = scored.masked[row] != 0 ? NAN : static_cast<double>(scored.total[row]);
    pi[i] = completions[row].prompt_index;
  }
  return t;
}

int64_t drop_zero_variance_groups(Draw& d) {
  const auto t = reward_tensors(d.scored, d.completions);
  int64_t dropped = 0;
  for (int64_t g : zero_variance_groups(t.rewards, t.prompt_index)) d.keep[static_cast<size_t>(g)] = false, ++dropped;
  return dropped;
}

GroupBatch gather_kept_groups(std::vector<Draw>& draws, int64_t take) {
  GroupBatch out;
  for (auto& d : draws) {
    std::vector<size_t> rows;  // rows of d.scored taken, in the order their completions are taken
    for (size_t g = 0; g < d.keep.size() && static_cast<int64_t>(out.records.size()) < take; ++g) {
      if (!d.keep[g]) continue;
      const auto at = static_cast<int64_t>(out.records.size());
      out.records.push_back(d.records[g]);
      out.prompt_ids.push_back(std::move(d.prompt_ids[g]));
      out.prompt_texts.push_back(std::move(d.prompt_texts[g]));
      for (size_t i = 0; i < d.completions.size(); ++i)
        if (d.completions[i].prompt_index == static_cast<int64_t>(g)) {
          rows.push_back(i);
          out.completions.push_back(std::move(d.completions[i]));
          out.completions.back().prompt_index = at;
        }
    }
    append_scored_rows(out.scored, d.scored, rows);
  }
  return out;
}

}  // namespace grpo::train
