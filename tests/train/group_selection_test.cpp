// Dynamic sampling's bookkeeping (group_selection.h), without a model: draws are built by hand and
// every expected value below is worked out from them by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/train/group_selection.h"
#include "grpo/util/error.h"

namespace {

using grpo::train::Draw;

// A draw of `prompts` groups whose completions come in the order of `order` (each entry a
// prompt_index). Row i scores total[i]; completion i's text is "<tag>c<i>".
Draw make_draw(const std::string& tag, const std::vector<const grpo::data::Record*>& records,
               const std::vector<int64_t>& order, const std::vector<float>& total) {
  Draw d;
  d.records = records;
  for (size_t g = 0; g < records.size(); ++g) {
    d.prompt_ids.push_back({static_cast<int64_t>(100 + g), 7});
    d.prompt_texts.push_back(tag + "p" + std::to_string(g));
  }
  for (size_t i = 0; i < order.size(); ++i) {
    grpo::rollout::Completion c;
    c.prompt_index = order[i];
    c.text = tag + "c" + std::to_string(i);
    d.completions.push_back(c);
  }
  d.scored.names = {"format", "code"};
  d.scored.weights = {0.2, 1.0};
  d.scored.per_function = {std::vector<float>(order.size(), 1.0f), total};
  d.scored.total = total;
  d.scored.masked.assign(order.size(), 0);
  d.keep.assign(records.size(), true);
  return d;
}

struct TwoDraws {
  grpo::data::Record r[4];
  std::vector<Draw> draws;
  TwoDraws() {
    for (int i = 0; i < 4; ++i) r[i].line = i + 1;
    // Draw 0: completions interleaved p0 p1 p0 p1; group 0 dropped; a problem on row 3 (group 1).
    draws.push_back(make_draw("a", {&r[0], &r[1]}, {0, 1, 0, 1}, {0.f, 1.f, 2.f, 3.f}));
    draws[0].keep = {false, true};
    draws[0].scored.masked[3] = 1;
    draws[0].scored.problems = {{3, "code", "timeout"}};
    draws[0].scored.counters = {{"code/runs", 4}};
    // Draw 1: completions in group order; a problem on row 2 (group 1).
    draws.push_back(make_draw("b", {&r[2], &r[3]}, {0, 0, 1, 1}, {4.f, 5.f, 6.f, 7.f}));
    draws[1].scored.problems = {{2, "code", "crash"}};
    draws[1].scored.counters = {{"code/runs", 3}};
  }
};

TEST(GroupSelection, GathersKeptGroupsInDrawOrderAndRenumbers) {
  TwoDraws t;
  auto b = grpo::train::gather_kept_groups(t.draws, 2);
  // Kept: draw 0 group 1, then draw 1 group 0 (draw 1 group 1 is surplus).
  ASSERT_EQ(b.records.size(), 2u);
  EXPECT_EQ(b.records[0], &t.r[1]);
  EXPECT_EQ(b.records[1], &t.r[2]);
  EXPECT_EQ(b.prompt_texts, (std::vector<std::string>{"ap1", "bp0"}));
  EXPECT_EQ(b.prompt_ids, (std::vector<std::vector<int64_t>>{{101, 7}, {100, 7}}));
  // Completions: draw 0 rows 1 and 3, draw 1 rows 0 and 1, renumbered to groups 0 and 1.
  ASSERT_EQ(b.completions.size(), 4u);
  const char* texts[] = {"ac1", "ac3", "bc0", "bc1"};
  const int64_t groups[] = {0, 0, 1, 1};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b.completions[i].text, texts[i]) << i;
    EXPECT_EQ(b.completions[i].prompt_index, groups[i]) << i;
  }
  // Score rows follow their completions; the problem on draw 0 row 3 is now row 1, draw 1's
  // problem was on a group not taken; counters count both draws.
  EXPECT_EQ(b.scored.total, (std::vector<float>{1.f, 3.f, 4.f, 5.f}));
  EXPECT_EQ(b.scored.per_function[1], (std::vector<float>{1.f, 3.f, 4.f, 5.f}));
  EXPECT_EQ(b.scored.per_function[0], (std::vector<float>(4, 1.0f)));
  EXPECT_EQ(b.scored.masked, (std::vector<uint8_t>{0, 1, 0, 0}));
  ASSERT_EQ(b.scored.problems.size(), 1u);
  EXPECT_EQ(b.scored.problems[0].row, 1u);
  EXPECT_EQ(b.scored.problems[0].message, "timeout");
  EXPECT_EQ(b.scored.counters.at("code/runs"), 7.0);
  EXPECT_EQ(b.scored.names, (std::vector<std::string>{"format", "code"}));
  EXPECT_EQ(b.scored.weights, (std::vector<double>{0.2, 1.0}));
}

TEST(GroupSelection, TakeCapsTheGroupsButCountersCountEveryDraw) {
  TwoDraws t;
  auto b = grpo::train::gather_kept_groups(t.draws, 1);
  ASSERT_EQ(b.records.size(), 1u);
  EXPECT_EQ(b.records[0], &t.r[1]);
  EXPECT_EQ(b.scored.total, (std::vector<float>{1.f, 3.f}));
  EXPECT_EQ(b.scored.counters.at("code/runs"), 7.0);
}

TEST(GroupSelection, RewardTensorsPutNanOnMaskedRows) {
  TwoDraws t;
  auto r = grpo::train::reward_tensors(t.draws[0].scored, t.draws[0].completions);
  EXPECT_EQ(r.rewards.scalar_type(), torch::kFloat64);
  EXPECT_EQ(r.prompt_index.scalar_type(), torch::kInt64);
  EXPECT_EQ(r.rewards[0].item<double>(), 0.0);
  EXPECT_EQ(r.rewards[2].item<double>(), 2.0);
  EXPECT_TRUE(std::isnan(r.rewards[3].item<double>()));  // masked
  EXPECT_TRUE(torch::equal(r.prompt_index, torch::tensor({0, 1, 0, 1}, torch::kInt64)));
  auto fewer = t.draws[0].completions;
  fewer.pop_back();
  EXPECT_THROW(grpo::train::reward_tensors(t.draws[0].scored, fewer), grpo::InputError);
}

TEST(GroupSelection, DropsGroupsWhoseFiniteRewardsAreAllEqual) {
  grpo::data::Record r[3];
  // Group 0: 1, 1 (equal); group 1: 0, 1; group 2: masked, 0.5 (one finite reward: equal).
  auto d = make_draw("x", {&r[0], &r[1], &r[2]}, {0, 0, 1, 1, 2, 2}, {1.f, 1.f, 0.f, 1.f, 9.f, 0.5f});
  d.scored.masked[4] = 1;
  EXPECT_EQ(grpo::train::drop_zero_variance_groups(d), 2);
  EXPECT_EQ(d.keep, (std::vector<bool>{false, true, false}));
}

}  // namespace
