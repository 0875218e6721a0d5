// Rollouts with tools: rewards see the whole transcript, but the answer-reading functions
// (math_answer, countdown, format) ignore what a tool printed. Each expected value is decided by
// hand from the rule "the model must restate the answer in its own text": an answer that appears
// only inside <output>...</output> earns nothing.
#include <gtest/gtest.h>

#include "grpo/reward/countdown_reward.h"
#include "grpo/reward/format_reward.h"
#include "grpo/reward/math_answer_reward.h"

namespace grpo::reward {
namespace {

using nlohmann::json;

RewardInput tool_row(std::string completion, json reference, bool tools_on = true) {
  RewardInput r;
  r.completion = std::move(completion);
  r.reference = std::move(reference);
  if (tools_on) r.tool_output_open = "<output>", r.tool_output_close = "</output>";
  return r;
}

float math(const RewardInput& r) { return MathAnswerReward(config::MathAnswerParams{}).score({r})[0]; }

TEST(ToolOutputReward, MathAnswerPrintedOnlyIsNotRewarded) {
  const json ref = {{"answer", "56088"}};
  // After </think> the interpreter printed the answer; the model wrote nothing of its own.
  const std::string printed_only = "<think>compute</think>\n```python\nprint(123 * 456)\n```\n<output>\n56088\n</output>";
  EXPECT_EQ(math(tool_row(printed_only, ref)), 0.0f);
  EXPECT_EQ(math(tool_row("<think>x</think>\n<output>\n56088\n</output>", ref)), 0.0f);
  // Printed <answer> tags: read as the model's own answer when the markers are not set (why the
  // trainer must set them), ignored when they are.
  const std::string printed_tags = "<think>x</think>\n<output>\n<answer>56088</answer>\n</output>";
  EXPECT_EQ(math(tool_row(printed_tags, ref, /*tools_on=*/false)), 1.0f);
  EXPECT_EQ(math(tool_row(printed_tags, ref)), 0.0f);
}

TEST(ToolOutputReward, MathAnswerRestatedIsRewarded) {
  const json ref = {{"answer", "56088"}};
  const std::string restated =
      "<think>```python\nprint(123 * 456)\n```\n<output>\n56088\n</output>\n</think>\n<answer>56088</answer>";
  EXPECT_EQ(math(tool_row(restated, ref)), 1.0f);
  // Restated wrongly: the printed value does not rescue it.
  const std::string wrong =
      "<think>```python\nprint(123 * 456)\n```\n<output>\n56088\n</output>\n</think>\n<answer>56089</answer>";
  EXPECT_EQ(math(tool_row(wrong, ref)), 0.0f);
  // A printed "</think>" would otherwise move the answer region to inside the output.
  const std::string printed_think_close =
      "<think>```python\nprint('</think> 7')\n```\n<output>\n</think> 7\n</output>\n</think>\n<answer>56088</answer>";
  EXPECT_EQ(math(tool_row(printed_think_close, ref)), 1.0f);
}

TEST(ToolOutputReward, UnclosedOutputIsStrippedToTheEnd) {
  // A transcript cut by the length limit inside an output: nothing after "<output>" is the model's.
  EXPECT_EQ(math(tool_row("<think>a</think>\n<answer>1</answer>\n<output>\n<answer>2</answer>", {{"answer", "2"}})), 0.0f);
  EXPECT_EQ(math(tool_row("<think>a</think>\n<answer>1</answer>\n<output>\n<answer>2</answer>", {{"answer", "1"}})), 1.0f);
}

TEST(ToolOutputReward, CountdownIgnoresPrintedEquation) {
  const CountdownReward f(config::CountdownParams{});
  const json ref = {{"nums", {3, 5, 7}}, {"target", 22}};
  const std::string printed_only = "<think>search</think>\n<output>\n<answer>3 * 5 + 7</answer>\n</output>";
  EXPECT_EQ(f.score({tool_row(printed_only, ref)})[0], 0.0f);
  EXPECT_EQ(f.score({tool_row(printed_only, ref, false)})[0], 1.0f);  // without the markers it would count
  const std::string restated = "<think>\n<output>\n3 * 5 + 7 = 22\n</output>\n</think>\n<answer>3 * 5 + 7</answer>";
  EXPECT_EQ(f.score({tool_row(restated, ref)})[0], 1.0f);
}

TEST(ToolOutputReward, FormatJudgesThePolicyTextOnly) {
  config::FormatParams p;
  p.mode = config::FormatMode::STRICT;
  const FormatReward f(p);
  // A tool's output inside the reasoning is not a format violation, even when it prints tags.
  const std::string ok =
      "<think>```python\nprint('<ans' + 'wer>')\n```\n<output>\n<answer>\n</output>\n</think>\n<answer>5</answer>";
  EXPECT_EQ(f.score({tool_row(ok, json::object())})[0], 1.0f);
  EXPECT_EQ(f.score({tool_row(ok, json::object(), false)})[0], 0.0f);  // two <answer> tags in the raw text
  // A format the interpreter completed is not the model's: the closing tags are only printed.
  const std::string printed = "<think>x\n<output>\n</think>\n<answer>5</answer>\n</output>";
  EXPECT_EQ(f.score({tool_row(printed, json::object())})[0], 0.0f);
}

}  // namespace
}  // namespace grpo::reward
