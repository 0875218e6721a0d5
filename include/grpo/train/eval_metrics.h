#pragma once
// The arithmetic of evaluation metrics, apart from any model: pass@k from n samples of which c are
// correct, and the majority vote (maj@k) over extracted answers. Pure functions, testable alone;
// evaluate.cpp feeds them the rollouts' correctness and answers.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace grpo::train {

/// The unbiased pass@k estimator of Chen et al. 2021 (eq. 1): the probability that at least one of
/// k samples drawn without replacement from n samples, c of them correct, is correct:
///   1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)
/// (the product form of the paper's numpy code: no large binomials). 1 when n - c < k.
/// Throws grpo::InputError unless 0 <= c <= n and 1 <= k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

/// Whether two extracted answers name the same value.
using SameAnswer = std::function<bool(const std::string&, const std::string&)>;

/// The math equivalence the math_answer reward uses (reward::compare_math_answers with the
/// relative tolerance): EQUAL is the same answer; anything else (unequal, unparseable) is not.
SameAnswer math_same_answer(double rel_tolerance);

/// An answer that can vote: the extracted answer, or nullopt when there is none or the math
/// comparison cannot read it (compare_math_answers(a, a) is not EQUAL).
std::optional<std::string> voting_answer(const std::optional<std::string>& extracted, double rel_tolerance);

/// Result of a majority vote over one problem's samples.
struct MajorityVote {
  double correct = 0;                 // 1 when the winning answer is correct, else 0
  std::optional<std::string> answer;  // the winning answer (its first occurrence); nullopt: no votes
  int64_t votes = 0;                  // samples in the winning cluster
  int64_t voters = 0;                 // samples with a voting answer
};

/// Majority vote over the first k samples (maj@k; k = answers.size() when k <= 0):
///  - answers[j] is sample j's voting answer; nullopt abstains (no answer, or unreadable);
///  - samples are clustered in order: each joins the first cluster whose first answer is
///    `same` as its own, else starts a new one;
///  - the largest cluster wins; a tie goes to the cluster whose first answer came first (the order
///    of Python's Counter.most_common, which lm-evaluation-harness's maj@k uses);
///  - the vote is correct when the winning cluster's first sample is correct (correct[j], as the
///    configured correctness rewards judged it); with no voting sample it is 0.
/// Throws grpo::InputError when answers and correct differ in size or k > answers.size().
MajorityVote majority_vote(const std::vector<std::optional<std::string>>& answers, const std::vector<uint8_t>& correct,
                           const SameAnswer& same, int64_t k = 0);

}  // namespace grpo::train
