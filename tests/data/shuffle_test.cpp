// Per-epoch shuffling: a pure, portable function of (seed, epoch); the loader resumes exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "grpo/data/loader.h"
#include "grpo/data/shuffle.h"
#include "grpo/util/error.h"

namespace {

using grpo::data::epoch_permutation;

TEST(Shuffle, Mt19937_64IsTheStandardsSequence) {
  // The C++ standard fixes the 10000th output of a default-seeded mt19937_64 ([rand.predef]); the
  // portability of our order rests on it.
  std::mt19937_64 g;
  g.discard(9999);
  EXPECT_EQ(g(), 9981545732273789042ULL);
}

TEST(Shuffle, IsAPermutationDeterministicPerSeedAndEpoch) {
  auto a = epoch_permutation(100, 42, 0);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(a, epoch_permutation(100, 42, 0));
  EXPECT_NE(a, epoch_permutation(100, 42, 1));
  EXPECT_NE(a, epoch_permutation(100, 43, 0));
  EXPECT_TRUE(epoch_permutation(0, 1, 0).empty());
  EXPECT_EQ(epoch_permutation(1, 1, 0), std::vector<int64_t>{0});
}

TEST(Shuffle, MatchesKnuthAlgorithmP) {
  // Checked against a direct transcription of Knuth's algorithm P (vol. 2, 3.4.2) with its own
  // rejection step, written here independently of uniform_below().
  std::mt19937_64 g(grpo::data::epoch_seed(7, 3));
  std::vector<int64_t> want(10);
  for (int i = 0; i < 10; ++i) want[i] = i;
  for (int i = 9; i > 0; --i) {
    const uint64_t bound = i + 1;
    const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound;
    uint64_t x;
    do x = g(); while (x > limit);
    std::swap(want[i], want[x % bound]);
  }
  EXPECT_EQ(epoch_permutation(10, 7, 3), want);
}

TEST(Shuffle, UniformBelowIsUnbiasedOnASmallBound) {
  // Bound 3 does not divide 2^64, so the top value 2^64 - 1 would make 0 more likely than 1 or 2;
  // it must be rejected and the next draw used.
  uint64_t v = UINT64_MAX;  // 2^64 - 1 > limit for bound 3 (2^64 mod 3 = 1, so limit = 2^64 - 2)
  int calls = 0;
  auto next = [&] { ++calls; return v--; };
  EXPECT_EQ(grpo::data::uniform_below(next, 3), (UINT64_MAX - 1) % 3);
  EXPECT_EQ(calls, 2);  // the first draw (2^64 - 1) was rejected
}

TEST(Shuffle, FirstPositionsAreRoughlyUniform) {
  // Over 3000 seeds, each of 5 items lands first ~600 times; 4 sigma bound of a binomial(3000, 0.2)
  // is 600 +- 88, so a biased shuffle (e.g. modulo bias or an off-by-one swap range) fails.
  std::map<int64_t, int> count;
  for (uint64_t s = 0; s < 3000; ++s) count[epoch_permutation(5, s, 0)[0]]++;
  for (int64_t i = 0; i < 5; ++i) EXPECT_NEAR(count[i], 600, 88) << i;
}

grpo::data::Dataset make_ds(int n) {
  std::vector<grpo::data::Record> rs;
  for (int i = 0; i < n; ++i) rs.push_back({{{"prompt", std::to_string(i)}, {"answer", i}}, "mem", i + 1});
  return grpo::data::Dataset::from_records(std::move(rs), grpo::config::DataConfig{});
}

TEST(Loader, WalksEpochsAndResumesFromSavedPosition) {
  auto ds = make_ds(7);
  grpo::data::Loader a(ds, 99, true);
  std::vector<int64_t> seen;
  for (int i = 0; i < 7; ++i) seen.push_back(a.next().row["answer"].get<int64_t>());
  EXPECT_EQ(seen, epoch_permutation(7, 99, 0));
  // Save mid-epoch 1, continue, then resume a fresh loader from the saved position.
  for (int i = 0; i < 3; ++i) a.next();
  const auto saved = a.position();
  EXPECT_EQ(saved, (grpo::data::LoaderPosition{1, 3}));
  std::vector<int64_t> rest_a;
  for (int i = 0; i < 12; ++i) rest_a.push_back(a.next().row["answer"].get<int64_t>());
  grpo::data::Loader b(ds, 99, true);
  b.set_position(saved);
  std::vector<int64_t> rest_b;
  for (int i = 0; i < 12; ++i) rest_b.push_back(b.next().row["answer"].get<int64_t>());
  EXPECT_EQ(rest_a, rest_b);
  auto e1 = epoch_permutation(7, 99, 1), e2 = epoch_permutation(7, 99, 2);
  EXPECT_EQ(rest_a[0], e1[3]);
  EXPECT_EQ(rest_a[4], e2[0]);  // 4 left in epoch 1, then epoch 2 starts
}

TEST(Loader, UnshuffledIsFileOrderAndBatchesSpanEpochs) {
  auto ds = make_ds(3);
  grpo::data::Loader l(ds, 1, false);
  auto b = l.next_batch(5);
  std::vector<int64_t> got;
  for (auto* r : b) got.push_back(r->row["answer"].get<int64_t>());
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 2, 0, 1}));
  EXPECT_EQ(l.position(), (grpo::data::LoaderPosition{1, 2}));
  EXPECT_THROW(l.set_position({0, 4}), grpo::InputError);
  EXPECT_THROW(l.set_position({-1, 0}), grpo::InputError);
}

}  // namespace
