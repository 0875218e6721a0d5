// The rollout rank's reply (grpo/train/rollout_messages.h) round-trips every field exactly: float32
// log-probs and rewards bit for bit (including -inf and NaN, which JSON text turns into null), text
// with NULs and UTF-8, tool masks and reward problems/counters; malformed bytes fail loudly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "grpo/train/rollout_messages.h"
#include "grpo/util/error.h"

namespace {

using grpo::train::RolloutReply;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

RolloutReply sample_reply() {
  RolloutReply r;
  r.policy_version = 7;
  grpo::rollout::Completion a;
  a.prompt_index = 1;
  a.token_ids = {5, 900000000001LL, 2};
  a.logprobs = {-0.1f, 0.0f, 1e-38f};  // 1e-38: denormal-adjacent, not exact in short decimals
  a.text = std::string("x\0y \xc3\xa9", 6);
  a.finish_reason = grpo::rollout::FinishReason::STOP_STRING;
  a.prompt_length = 11;
  a.completion_length = 3;
  a.tool_mask = {0, 1, 0};
  a.tool_calls = 2;
  a.tool_errors = 1;
  a.tool_timeouts = 1;
  grpo::rollout::Completion b;
  b.token_ids = {3};
  b.logprobs = {-std::numeric_limits<float>::infinity()};
  b.tool_mask = {0};
  b.completion_length = 1;
  r.completions = {a, b};
  r.scored.names = {"math_answer", "format"};
  r.scored.weights = {1.0, 0.1};
  r.scored.per_function = {{1.0f, 0.0f}, {0.3333333432674408f, std::nanf("")}};
  r.scored.total = {1.0333333f, 0.0f};
  r.scored.masked = {0, 1};
  r.scored.problems = {{1, "format", "bad row"}};
  r.scored.counters = {{"math_answer/parsed", 2.0}};
  return r;
}

TEST(RolloutMessages, RoundTripsEveryFieldExactly) {
  const RolloutReply in = sample_reply();
  const RolloutReply out = grpo::train::decode_rollout_reply(grpo::train::encode_rollout_reply(in));
  EXPECT_EQ(out.policy_version, 7);
  ASSERT_EQ(out.completions.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    const auto& x = in.completions[k];
    const auto& y = out.completions[k];
    EXPECT_EQ(y.prompt_index, x.prompt_index);
    EXPECT_EQ(y.token_ids, x.token_ids);
    ASSERT_EQ(y.logprobs.size(), x.logprobs.size());
    for (size_t t = 0; t < x.logprobs.size(); ++t) EXPECT_EQ(bits(y.logprobs[t]), bits(x.logprobs[t])) << k << "," << t;
    EXPECT_EQ(y.text, x.text);
    EXPECT_EQ(y.finish_reason, x.finish_reason);
    EXPECT_EQ(y.prompt_length, x.prompt_length);
    EXPECT_EQ(y.completion_length, x.completion_length);
    EXPECT_EQ(y.tool_mask, x.tool_mask);
    EXPECT_EQ(y.tool_calls, x.tool_calls);
    EXPECT_EQ(y.tool_errors, x.tool_errors);
    EXPECT_EQ(y.tool_timeouts, x.tool_timeouts);
  }
  EXPECT_EQ(out.completions[0].text.size(), 6u);  // the NUL did not cut it
  EXPECT_TRUE(std::isinf(out.completions[1].logprobs[0]) && out.completions[1].logprobs[0] < 0);
  EXPECT_EQ(out.scored.names, in.scored.names);
  EXPECT_EQ(out.scored.weights, in.scored.weights);
  ASSERT_EQ(out.scored.per_function.size(), 2u);
  EXPECT_EQ(bits(out.scored.per_function[1][0]), bits(0.3333333432674408f));
  EXPECT_TRUE(std::isnan(out.scored.per_function[1][1]));
  EXPECT_EQ(bits(out.scored.total[0]), bits(1.0333333f));
  EXPECT_EQ(out.scored.masked, in.scored.masked);
  ASSERT_EQ(out.scored.problems.size(), 1u);
  EXPECT_EQ(out.scored.problems[0].row, 1u);
  EXPECT_EQ(out.scored.problems[0].function, "format");
  EXPECT_EQ(out.scored.problems[0].message, "bad row");
  EXPECT_EQ(out.scored.counters, in.scored.counters);
}

TEST(RolloutMessages, MalformedBytesThrow) {
  EXPECT_THROW(grpo::train::decode_rollout_reply("not cbor"), grpo::Error);
  std::string ok = grpo::train::encode_rollout_reply(sample_reply());
  EXPECT_THROW(grpo::train::decode_rollout_reply(ok.substr(0, ok.size() / 2)), grpo::Error);  // truncated
}

}  // namespace
