// The SFT response after tokenizer.assistant_prefix: the prompt already ends with the prefix, so a
// solution that repeats it must lose the copy (else SFT teaches "<think><think>", which the strict
// format reward rejects: the SmolLM2 word_problems run of issue 17 trained to 0% format that way).
#include <gtest/gtest.h>

#include "grpo/train/sft_response.h"

namespace grpo::train {
namespace {

TEST(SftResponse, DropsTheAssistantPrefixThePromptAlreadyEndsWith) {
  EXPECT_EQ(sft_response_after_prefix("<think>19 - 6 = 13.</think>\n<answer>13</answer>", "<think>"),
            "19 - 6 = 13.</think>\n<answer>13</answer>");
  // Only a leading copy, only once.
  EXPECT_EQ(sft_response_after_prefix("<think><think>x</think>", "<think>"), "<think>x</think>");
  EXPECT_EQ(sft_response_after_prefix("so <think>x</think>", "<think>"), "so <think>x</think>");
  // No prefix configured, or a response that does not start with it: unchanged.
  EXPECT_EQ(sft_response_after_prefix("<think>x</think>", ""), "<think>x</think>");
  EXPECT_EQ(sft_response_after_prefix("<thin", "<think>"), "<thin");
  EXPECT_EQ(sft_response_after_prefix("", "<think>"), "");
}

}  // namespace
}  // namespace grpo::train
