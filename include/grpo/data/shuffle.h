#pragma once
// Deterministic, portable per-epoch shuffling. The order of epoch e is a pure function of
// (seed, e, n): std::mt19937_64 (its output sequence is fixed by the C++ standard) drives our own
// Fisher-Yates with unbiased rejection sampling, because std::shuffle and
// std::uniform_int_distribution are implementation-defined and would differ between standard
// libraries. A resumed run therefore recomputes the same order from the saved (epoch, index).
#include <cstdint>
#include <vector>

namespace grpo::data {

/// 64-bit seed of epoch `epoch`'s generator: splitmix64 mixing of seed and epoch, so neighbouring
/// seeds or epochs give unrelated streams.
uint64_t epoch_seed(uint64_t seed, int64_t epoch);

/// Uniform integer in [0, bound) from `next` (a callable returning uniform 64-bit values), by
/// rejection so that every value is exactly equally likely. bound >= 1.
template <class Next>
uint64_t uniform_below(Next&& next, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound;  // largest multiple of bound, minus 1
  uint64_t x;
  do x = next();
  while (x > limit);
  return x % bound;
}

/// A permutation of 0..n-1 for epoch `epoch` (Fisher-Yates, Knuth vol. 2 alg. P). n >= 0.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace grpo::data
