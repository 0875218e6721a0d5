// Robustness: random LaTeX-ish garbage never crashes, throws or hangs any reward function, and
// concurrent scoring gives the same values as serial scoring (GiNaC work is serialised inside).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "grpo/reward/countdown_reward.h"
#include "grpo/reward/format_reward.h"
#include "grpo/reward/language_consistency_reward.h"
#include "grpo/reward/length_reward.h"
#include "grpo/reward/math_answer_reward.h"

namespace grpo::reward {
namespace {

// Fragments chosen to hit the parsers' edge paths: unbalanced braces, commands, operators, tags,
// huge exponents, escapes and invalid UTF-8.
const std::vector<std::string> kPieces = {
    "\\boxed{", "}", "{", "\\frac", "\\sqrt", "[", "]", "(", ")", "^", "_", "!", "-", "+", "*", "/",
    "1", "0", "9", "10", ".", ",", "=", "x", "y", "\\pi", "\\infty", "\\left(", "\\right)", "\\{", "\\}",
    "%", "$", "<think>", "</think>", "<answer>", "</answer>", "####", "the answer is ", "e5", " ", "\n",
    "\\text{", "|", "\xff", "\xe4\xbd", "你", "\\dfrac12", "10^{10^{10}}", "9999999999999999999999",
};

std::vector<RewardInput> random_rows(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<RewardInput> rows(n);
  for (auto& r : rows) {
    size_t len = rng() % 40;
    for (size_t k = 0; k < len; ++k) r.completion += kPieces[rng() % kPieces.size()];
    std::string ref;
    size_t rlen = rng() % 6;
    for (size_t k = 0; k < rlen; ++k) ref += kPieces[rng() % kPieces.size()];
    r.reference = {{"answer", ref}, {"nums", {1, 2, 3}}, {"target", 6}};
    r.completion_tokens = static_cast<int64_t>(rng() % 400);
  }
  return rows;
}

TEST(RewardRobustness, RandomInputsNeverCrashOrThrow) {
  auto rows = random_rows(1500, 7);
  std::vector<std::unique_ptr<RewardFunction>> fns;
  fns.push_back(std::make_unique<FormatReward>(config::FormatParams{}));
  fns.push_back(std::make_unique<MathAnswerReward>(config::MathAnswerParams{}));
  fns.push_back(std::make_unique<CountdownReward>(config::CountdownParams{}));
  fns.push_back(std::make_unique<LanguageConsistencyReward>(config::LanguageConsistencyParams{}));
  fns.push_back(std::make_unique<LengthReward>(config::LengthParams{}, nullptr));
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& fn : fns) {
    RewardScores s;
    ASSERT_NO_THROW(s = fn->score_batch(rows)) << fn->name();
    ASSERT_EQ(s.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_TRUE(std::isfinite(s.values[i])) << fn->name() << " row " << i;
      EXPECT_GE(s.values[i], -1.0f) << fn->name();
      EXPECT_LE(s.values[i], 1.0f) << fn->name();
      // Scoring itself never failed (a failure would be reported as "scoring failed: ...").
      EXPECT_EQ(s.problems[i].find("scoring failed"), std::string::npos) << fn->name() << ": " << s.problems[i];
    }
  }
  // Far above the expected ~0.2 s: only a hang or a blow-up would reach it.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

TEST(RewardRobustness, ConcurrentMathScoringMatchesSerial) {
  auto rows = random_rows(300, 11);
  for (size_t i = 0; i < rows.size(); i += 3) {  // make a third of them real matches
    rows[i].completion = "\\boxed{\\frac{" + std::to_string(i) + "}{4}}";
    rows[i].reference = {{"answer", std::to_string(i / 4.0)}};
  }
  MathAnswerReward fn{config::MathAnswerParams{}};
  const auto serial = fn.score(rows);
  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) threads.emplace_back([&, t] { results[t] = fn.score(rows); });
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, serial);
  size_t ones = 0;
  for (size_t i = 0; i < rows.size(); i += 3) ones += serial[i] == 1.0f;
  EXPECT_EQ(ones, (rows.size() + 2) / 3);
}

}  // namespace
}  // namespace grpo::reward
