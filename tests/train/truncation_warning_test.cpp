// The all-truncated warning: once when it starts, then every N steps while it lasts, reset by a
// step in which any completion ended; it names rollout.max_completion_length and its value.
#include <gtest/gtest.h>

#include "grpo/train/truncation_warning.h"

namespace {

using grpo::train::TruncationWarning;

TEST(TruncationWarning, OnceThenEveryNStepsWhileItLasts) {
  TruncationWarning w(48, 3);
  EXPECT_EQ(w.observe(1, 0.5), "");
  const std::string first = w.observe(2, 1.0);
  EXPECT_NE(first.find("step 2: every completion was truncated at rollout.max_completion_length = 48 tokens"),
            std::string::npos) << first;
  EXPECT_NE(first.find("raise rollout.max_completion_length"), std::string::npos) << first;
  EXPECT_EQ(first.find("in a row"), std::string::npos) << first;
  EXPECT_EQ(w.observe(3, 1.0), "");
  EXPECT_EQ(w.observe(4, 1.0), "");
  const std::string repeat = w.observe(5, 1.0);  // 4th all-truncated step in a row: 1 + 3
  EXPECT_NE(repeat.find("step 5: every completion was truncated"), std::string::npos) << repeat;
  EXPECT_NE(repeat.find("(4 steps in a row; repeated every 3 steps while it lasts)"), std::string::npos) << repeat;
  EXPECT_EQ(w.observe(6, 1.0), "");
  // One completion ended: the streak is over, and the next all-truncated step warns at once.
  EXPECT_EQ(w.observe(7, 0.9375), "");
  EXPECT_NE(w.observe(8, 1.0).find("step 8: every completion"), std::string::npos);
}

TEST(TruncationWarning, NothingWhenSomeCompletionEnds) {
  TruncationWarning w(16);
  for (int64_t s = 1; s <= 30; ++s) EXPECT_EQ(w.observe(s, s % 2 ? 0.0 : 0.99), "") << s;
}

}  // namespace
