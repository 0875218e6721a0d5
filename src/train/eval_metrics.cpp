#include "grpo/train/eval_metrics.h"

#include <algorithm>

#include "grpo/reward/math_equivalence.h"
#include "grpo/util/error.h"

namespace grpo::train {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  GRPO_REQUIRE(n >= 1 && c >= 0 && c <= n, "pass@k: need 0 <= c <= n and n >= 1 (n = ", n, ", c = ", c, ")");
  GRPO_REQUIRE(k >= 1 && k <= n, "pass@", k, ": k must be between 1 and the number of samples n = ", n);
  if (n - c < k) return 1.0;  // every k-subset holds a correct sample
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i): each factor in (0, 1), no overflow.
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail;
}

SameAnswer math_same_answer(double rel_tolerance) {
  return [rel_tolerance](const std::string& a, const std::string& b) {
    return reward::compare_math_answers(a, b, rel_tolerance) == reward::MathMatch::EQUAL;
  };
}

std::optional<std::string> voting_answer(const std::optional<std::string>& extracted, double rel_tolerance) {
  if (!extracted || extracted->empty()) return std::nullopt;
  if (reward::compare_math_answers(*extracted, *extracted, rel_tolerance) != reward::MathMatch::EQUAL) return std::nullopt;
  return extracted;
}

MajorityVote majority_vote(const std::vector<std::optional<std::string>>& answers, const std::vector<uint8_t>& correct,
                           const SameAnswer& same, int64_t k) {
  GRPO_REQUIRE(answers.size() == correct.size(), "majority_vote: ", answers.size(), " answers but ", correct.size(),
               " correctness flags");
  const int64_t n = static_cast<int64_t>(answers.size());
  if (k <= 0) k = n;
  GRPO_REQUIRE(k <= n, "maj@", k, ": only ", n, " samples");
  struct Cluster {
    size_t first;  // index of the sample that opened it
    int64_t size;
  };
  std::vector<Cluster> clusters;  // in order of first occurrence
  MajorityVote v;
  for (size_t j = 0; j < static_cast<size_t>(k); ++j) {
    if (!answers[j]) continue;
    ++v.voters;
    auto it = std::find_if(clusters.begin(), clusters.end(),
                           [&](const Cluster& c) { return same(*answers[c.first], *answers[j]); });
    if (it == clusters.end()) clusters.push_back({j, 1});
    else ++it->size;
  }
  const Cluster* win = nullptr;
  for (const auto& c : clusters)
    if (!win || c.size > win->size) win = &c;  // strictly larger: ties keep the earlier cluster
  if (!win) return v;
  v.answer = answers[win->first];
  v.votes = win->size;
  v.correct = correct[win->first] ? 1.0 : 0.0;
  return v;
}

}  // namespace grpo::train
