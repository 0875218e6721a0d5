// StepProgress: the line's fields, ETA arithmetic, and when plain (non-terminal) lines are printed.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "grpo/util/progress.h"

namespace {

using grpo::util::format_duration;
using grpo::util::StepProgress;

// Reads back everything written to a tmpfile.
std::string slurp(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

int count(const std::string& s, const std::string& x) {
  int n = 0;
  for (size_t at = s.find(x); at != std::string::npos; at = s.find(x, at + 1)) ++n;
  return n;
}

TEST(FormatDuration, Units) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(500), "8m20s");  // 263 steps at 1.9 s = 499.7 s
  EXPECT_EQ(format_duration(499.7), "8m20s");
  EXPECT_EQ(format_duration(3600 + 5 * 60 + 10), "1h05m");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(StepProgress, LineHasStepBarRateEtaAndValues) {
  StepProgress p("stage sft", 0, 300, 0, nullptr, false);
  // 37/300 -> 1 of 10 cells; 263 steps left at 1.9 s/step = 499.7 s.
  EXPECT_EQ(p.line(37, 1.9, {{"loss", 0.41}, {"reward", 0.72}}),
            "stage sft  step 37/300  [#.........]  1.9 s/step  ETA 8m20s  loss 0.41 reward 0.72");
  EXPECT_EQ(p.line(300, 0.25, {}), "stage sft  step 300/300  [##########]  4.0 steps/s  ETA 0s");
  // No rate before the first step is done: no ETA either.
  EXPECT_EQ(p.line(0, NAN, {}), "stage sft  step 0/300  [..........]");
}

TEST(StepProgress, PlainModePrintsAboutEveryTenthAndTheLastStep) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    StepProgress p("stage grpo", 0, 25, 0, f, false);  // every ceil(25 / 10) = 3 steps
    for (int s = 1; s <= 25; ++s) p.update(s, {{"loss", 1.0}});
  }
  auto out = slurp(f);
  std::fclose(f);
  // Steps 3, 6, ..., 24 (8 lines) and 25.
  EXPECT_EQ(count(out, "\n"), 9) << out;
  EXPECT_NE(out.find("step 3/25 "), std::string::npos) << out;
  EXPECT_NE(out.find("step 25/25 "), std::string::npos) << out;
  EXPECT_EQ(out.find("step 4/25 "), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
}

TEST(StepProgress, PlainModeEveryNStepsCountsFromTheResumeStep) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    StepProgress p("stage grpo", 10, 20, 4, f, false);
    for (int s = 11; s <= 20; ++s) p.update(s);
  }
  auto out = slurp(f);
  std::fclose(f);
  EXPECT_EQ(count(out, "\n"), 3) << out;  // 14, 18, 20
  EXPECT_NE(out.find("step 14/20 "), std::string::npos) << out;
  EXPECT_NE(out.find("step 18/20 "), std::string::npos) << out;
  EXPECT_NE(out.find("step 20/20 "), std::string::npos) << out;
}

TEST(StepProgress, TerminalModeRewritesOneLineAndEndsItAtTheEnd) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    StepProgress p("stage sft", 0, 3, 0, f, true);
    p.update(1);
    p.clear();  // before a log line
    p.update(2);
    p.update(3);
  }
  auto out = slurp(f);
  std::fclose(f);
  EXPECT_EQ(count(out, "\r\033[K"), 4) << out;  // three updates and the clear
  EXPECT_EQ(count(out, "\n"), 1) << out;        // only after the last step
  EXPECT_EQ(out.back(), '\n');
}

}  // namespace
