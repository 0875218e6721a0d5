// The evaluation arithmetic without a model: pass@k (Chen et al. 2021, eq. 1) against binomials
// computed by hand, maj@k's clustering, ties and abstentions, and summarize_eval() on hand-made
// problems (accuracy, pass@k, maj@k, format and truncation rates, reward means, the JSONL record).
#include <gtest/gtest.h>

#include <algorithm>

#include "grpo/train/eval_metrics.h"
#include "grpo/train/evaluate.h"
#include "grpo/util/error.h"

namespace {

using grpo::train::majority_vote;
using grpo::train::pass_at_k;
using Answers = std::vector<std::optional<std::string>>;

TEST(PassAtK, HandComputedValues) {
  // n = k: any correct sample makes the (only) k-subset correct; none makes it wrong.
  EXPECT_DOUBLE_EQ(pass_at_k(4, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 4), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(4, 4, 4), 1.0);
  // c = 0 is 0 and c = n is 1 for every k.
  for (int k = 1; k <= 10; ++k) {
    EXPECT_DOUBLE_EQ(pass_at_k(10, 0, k), 0.0) << "k=" << k;
    EXPECT_DOUBLE_EQ(pass_at_k(10, 10, k), 1.0) << "k=" << k;
  }
  // k = 1 is the fraction correct: 1 - C(7,1)/C(10,1) = 1 - 7/10.
  EXPECT_NEAR(pass_at_k(10, 3, 1), 0.3, 1e-15);
  // n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7.
  EXPECT_NEAR(pass_at_k(5, 2, 2), 0.7, 1e-15);
  // n = 8, c = 2, k = 4: 1 - C(6,4)/C(8,4) = 1 - 15/70 = 11/14.
  EXPECT_NEAR(pass_at_k(8, 2, 4), 11.0 / 14.0, 1e-15);
  // n - c < k: every 3-subset of 5 samples with 3 correct holds a correct one (C(2,3) = 0).
  EXPECT_DOUBLE_EQ(pass_at_k(5, 3, 3), 1.0);
  // Binomials past double's range (C(2000,1000) ~ 1e600): 1 - C(1999,1000)/C(2000,1000) = 1 - 1000/2000.
  EXPECT_NEAR(pass_at_k(2000, 1, 1000), 0.5, 1e-12);
  // n = 16, c = 3, k = 8: 1 - C(13,8)/C(16,8) = 1 - 1287/12870 = 0.9.
  EXPECT_NEAR(pass_at_k(16, 3, 8), 0.9, 1e-12);
}

TEST(PassAtK, RejectsImpossibleCounts) {
  EXPECT_THROW(pass_at_k(4, 5, 1), grpo::InputError);   // c > n
  EXPECT_THROW(pass_at_k(4, -1, 1), grpo::InputError);  // c < 0
  EXPECT_THROW(pass_at_k(4, 1, 5), grpo::InputError);   // k > n
  EXPECT_THROW(pass_at_k(4, 1, 0), grpo::InputError);   // k < 1
}

bool exact(const std::string& a, const std::string& b) { return a == b; }

TEST(MajorityVote, LargestClusterWinsAndItsFirstSampleDecides) {
  auto v = majority_vote({"3", "5", "3"}, {0, 1, 0}, exact);
  EXPECT_EQ(v.answer, "3");
  EXPECT_EQ(v.votes, 2);
  EXPECT_EQ(v.voters, 3);
  EXPECT_EQ(v.correct, 0.0);  // the correct "5" is outvoted
  EXPECT_EQ(majority_vote({"5", "3", "5"}, {1, 0, 1}, exact).correct, 1.0);
}

TEST(MajorityVote, TiesGoToTheAnswerSeenFirst) {
  // One vote each: the first sample's answer wins, whichever is correct.
  EXPECT_EQ(majority_vote({"5", "3"}, {0, 1}, exact).answer, "5");
  EXPECT_EQ(majority_vote({"5", "3"}, {0, 1}, exact).correct, 0.0);
  EXPECT_EQ(majority_vote({"3", "5"}, {1, 0}, exact).correct, 1.0);
  // Two against two: "a" appeared first.
  auto v = majority_vote({"a", "b", "b", "a"}, {0, 1, 1, 0}, exact);
  EXPECT_EQ(v.answer, "a");
  EXPECT_EQ(v.votes, 2);
  EXPECT_EQ(v.correct, 0.0);
  // A later cluster that grows larger still wins.
  EXPECT_EQ(majority_vote({"a", "b", "b"}, {0, 1, 1}, exact).answer, "b");
}

TEST(MajorityVote, UnparseableAnswersAbstain) {
  // Two samples without an answer do not outvote one with an answer.
  auto v = majority_vote({std::nullopt, std::nullopt, "7"}, {0, 0, 1}, exact);
  EXPECT_EQ(v.answer, "7");
  EXPECT_EQ(v.voters, 1);
  EXPECT_EQ(v.correct, 1.0);
  // No answer at all: no winner, scored wrong.
  v = majority_vote({std::nullopt, std::nullopt}, {0, 0}, exact);
  EXPECT_FALSE(v.answer.has_value());
  EXPECT_EQ(v.voters, 0);
  EXPECT_EQ(v.correct, 0.0);
  // voting_answer: none, empty, and a number the math parser refuses (over 300 digits) abstain.
  EXPECT_FALSE(grpo::train::voting_answer(std::nullopt, 1e-6).has_value());
  EXPECT_FALSE(grpo::train::voting_answer(std::string(), 1e-6).has_value());
  EXPECT_FALSE(grpo::train::voting_answer(std::string(400, '9'), 1e-6).has_value());
  EXPECT_EQ(grpo::train::voting_answer(std::string("\\frac{1}{2}"), 1e-6), "\\frac{1}{2}");
}

TEST(MajorityVote, MathEquivalenceClustersEqualValues) {
  // 0.5, 1/2 and \frac{1}{2} are one answer (3 votes) against two 3s.
  auto same = grpo::train::math_same_answer(1e-6);
  auto v = majority_vote({"3", "0.5", "1/2", "3", "\\frac{1}{2}"}, {0, 1, 1, 0, 1}, same);
  EXPECT_EQ(v.answer, "0.5");
  EXPECT_EQ(v.votes, 3);
  EXPECT_EQ(v.correct, 1.0);
  // 1,000 and 1000 are the same number.
  EXPECT_EQ(majority_vote({"7", "1,000", "1000"}, {0, 1, 1}, same).votes, 2);
}

TEST(MajorityVote, UsesTheFirstKSamples) {
  Answers a = {"1", "2", "2"};
  EXPECT_EQ(majority_vote(a, {1, 0, 0}, exact, 1).answer, "1");
  EXPECT_EQ(majority_vote(a, {1, 0, 0}, exact, 2).answer, "1");  // a 1-1 tie: the first
  EXPECT_EQ(majority_vote(a, {1, 0, 0}, exact, 3).answer, "2");
  EXPECT_THROW(majority_vote(a, {1, 0, 0}, exact, 4), grpo::InputError);
  EXPECT_THROW(majority_vote(a, {1, 0}, exact), grpo::InputError);
}

grpo::config::RewardConfig format_and_math() {
  grpo::config::RewardConfig r;
  grpo::config::RewardFunctionConfig f, m;
  f.name = grpo::config::RewardKind::FORMAT;
  f.weight = 0.2;
  m.name = grpo::config::RewardKind::MATH_ANSWER;
  r.functions = {f, m};
  return r;
}

grpo::train::ProblemResult problem(int64_t index, bool correct, bool formatted, bool truncated, int64_t length,
                                   Answers answers, std::vector<uint8_t> sample_correct) {
  grpo::train::ProblemResult p;
  p.index = index;
  p.prompt = "p" + std::to_string(index);
  p.completion = "c";
  p.correct = correct;
  p.formatted = formatted;
  p.truncated = truncated;
  p.length = length;
  p.rewards = {{"format", formatted ? 1.0 : 0.0}, {"math_answer", correct ? 1.0 : 0.0},
               {"total", (formatted ? 0.2 : 0.0) + (correct ? 1.0 : 0.0)}};
  for (size_t j = 0; j < answers.size(); ++j) {
    p.samples.push_back("s" + std::to_string(j));
    p.sample_lengths.push_back(10 * static_cast<int64_t>(j + 1));
    p.sample_truncated.push_back(0);
  }
  p.sample_answers = std::move(answers);
  p.sample_correct = std::move(sample_correct);
  return p;
}

TEST(SummarizeEval, MetricsOfHandMadeProblems) {
  // Three problems, n = 4 samples each (reference answer 2 in all three).
  std::vector<grpo::train::ProblemResult> ps = {
      // greedy right; samples: 2 of 4 right, the vote 2-2 tie goes to "2" (seen first): maj right.
      problem(0, true, true, false, 10, {"2", "3", "2", "3"}, {1, 0, 1, 0}),
      // greedy wrong and truncated; 1 of 4 right; the vote: "5" twice beats "2" once.
      problem(1, false, false, true, 30, {"5", "2", "5", std::nullopt}, {0, 1, 0, 0}),
      // greedy wrong; 0 of 4; nothing parseable: maj wrong.
      problem(2, false, true, false, 20, {std::nullopt, std::nullopt, std::nullopt, std::nullopt}, {0, 0, 0, 0}),
  };
  std::reverse(ps.begin(), ps.end());  // order does not matter
  auto r = grpo::train::summarize_eval(ps, format_and_math(), {1, 2, 4});
  EXPECT_EQ(r.num_prompts, 3);
  EXPECT_EQ(r.num_samples, 4);
  EXPECT_NEAR(r.accuracy, 1.0 / 3, 1e-15);
  EXPECT_NEAR(r.format_rate, 2.0 / 3, 1e-15);
  EXPECT_NEAR(r.truncation_rate, 1.0 / 3, 1e-15);
  EXPECT_NEAR(r.mean_completion_length, 20.0, 1e-12);
  EXPECT_NEAR(r.sample_mean_completion_length, 25.0, 1e-12);  // (10 + 20 + 30 + 40) / 4
  // pass@1 = mean c/n = (2/4 + 1/4 + 0) / 3.
  EXPECT_NEAR(r.pass_at.at(1), 0.25, 1e-15);
  // pass@2: problem 0: 1 - C(2,2)/C(4,2) = 5/6; problem 1: 1 - C(3,2)/C(4,2) = 1/2; problem 2: 0.
  EXPECT_NEAR(r.pass_at.at(2), (5.0 / 6 + 0.5) / 3, 1e-15);
  EXPECT_NEAR(r.pass_at.at(4), 2.0 / 3, 1e-15);
  EXPECT_NEAR(r.pass_at_k, 2.0 / 3, 1e-15);
  EXPECT_EQ(r.k, 4);
  // maj@1: the first sample: "2" right, "5" wrong, none -> 1/3. maj@4: right, wrong, wrong -> 1/3.
  EXPECT_NEAR(r.maj_at.at(1), 1.0 / 3, 1e-15);
  EXPECT_NEAR(r.maj_at.at(4), 1.0 / 3, 1e-15);
  // maj@2: problem 0 ("2", "3") tie -> "2" right; problem 1 ("5", "2") tie -> "5" wrong.
  EXPECT_NEAR(r.maj_at.at(2), 1.0 / 3, 1e-15);
  EXPECT_NEAR(r.reward_means.at("total"), (1.2 + 0.0 + 0.2) / 3, 1e-12);

  auto m = grpo::train::eval_metrics(r);
  EXPECT_EQ(m.at("eval/accuracy"), r.accuracy);
  EXPECT_EQ(m.at("eval/pass@4"), r.pass_at.at(4));
  EXPECT_EQ(m.at("eval/maj@4"), r.maj_at.at(4));
  EXPECT_EQ(m.at("eval/format_rate"), r.format_rate);
  EXPECT_EQ(m.at("eval/truncation_rate"), r.truncation_rate);
  EXPECT_EQ(m.at("eval/completion_length"), 20.0);

  EXPECT_THROW(grpo::train::summarize_eval(ps, format_and_math(), {5}), grpo::InputError);  // k > n
}

TEST(SummarizeEval, GreedyOnlyKeepsTheTrainingKeys) {
  // n = 1 (trainer.eval_num_samples 1): pass@1 is the greedy accuracy, no maj@k; the keys the
  // stage table and metrics.jsonl have always had.
  std::vector<grpo::train::ProblemResult> ps = {problem(0, true, true, false, 4, {}, {}),
                                                problem(1, false, false, false, 6, {}, {})};
  auto r = grpo::train::summarize_eval(ps, format_and_math(), {1});
  EXPECT_EQ(r.k, 1);
  EXPECT_EQ(r.pass_at_k, 0.5);
  EXPECT_TRUE(r.maj_at.empty());
  auto m = grpo::train::eval_metrics(r);
  EXPECT_EQ(m.at("eval/pass@1"), 0.5);
  EXPECT_EQ(m.count("eval/maj@1"), 0u);
  EXPECT_EQ(m.at("eval/rewards/math_answer"), 0.5);
}

TEST(ProblemRecord, RoundTripsThroughJson) {
  auto p = problem(7, true, false, true, 12, {"2", std::nullopt}, {1, 0});
  p.answer = "2";
  auto j = grpo::train::problem_to_json(p);
  EXPECT_EQ(j["num_correct"], 1);
  auto q = grpo::train::problem_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(grpo::train::problem_to_json(q), j);
  EXPECT_EQ(q.sample_answers[1], std::nullopt);
  j.erase("correct");
  EXPECT_THROW(grpo::train::problem_from_json(j), grpo::InputError);
}

}  // namespace
