// math_answer scoring throughput: completions per second on a synthetic mix of answer styles
// (boxed LaTeX fractions and roots, GSM8K "####", "the answer is", <answer> tags, tuples), each with a
// ~1.5 KB chain of thought, half right and half wrong. Prints; never fails on a speed.
//   bench_reward_bench [num_completions=2000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "grpo/reward/format_reward.h"
#include "grpo/reward/math_answer_reward.h"

using namespace grpo;

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2000;
  std::mt19937_64 rng(1234);
  std::string cot;
  for (int i = 0; i < 40; ++i) cot += "We have " + std::to_string(i) + " + 1 = " + std::to_string(i + 1) + ", so... ";
  struct Style {
    const char* answer;
    const char* reference;
  };
  const std::vector<Style> styles = {
      {"\\boxed{\\frac{3}{4}}", "0.75"},      {"\\boxed{1,000}", "1000"},
      {"#### 72", "72"},                       {"The answer is $2\\sqrt{2}$.", "\\sqrt{8}"},
      {"<answer>(1, 2)</answer>", "(1,2)"},   {"\\boxed{x^2+2x+1}", "(x+1)^2"},
      {"\\boxed{50\\%}", "0.5"},               {"\\boxed{6.02 \\times 10^{23}}", "6.02e23"},
  };
  std::vector<reward::RewardInput> batch(n);
  size_t right_count = 0;
  for (size_t i = 0; i < n; ++i) {
    const Style& s = styles[rng() % styles.size()];
    bool right = rng() % 2 == 0;
    right_count += right;
    batch[i].completion = "<think>" + cot + "</think>\n" + s.answer;
    batch[i].reference = {{"answer", right ? std::string(s.reference) : std::string("12345")}};
  }
  reward::MathAnswerReward math{config::MathAnswerParams{}};
  reward::FormatReward format{config::FormatParams{}};
  math.score(std::vector<reward::RewardInput>(batch.begin(), batch.begin() + std::min<size_t>(n, 50)));  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  auto values = math.score(batch);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double sum = 0;
  for (float v : values) sum += v;
  t0 = std::chrono::steady_clock::now();
  format.score(batch);
  double fs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("math_answer: %zu completions in %.3f s = %.0f completions/s (single thread; mean reward %.3f, "
              "expected %.3f)\n", n, s, n / s, sum / n, static_cast<double>(right_count) / n);
  std::printf("format:      %zu completions in %.4f s = %.0f completions/s\n", n, fs, n / fs);
  return 0;
}
