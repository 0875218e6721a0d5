#pragma once
// Independent, reproducible random streams per rank: (seed, rank, stream) -> generator. Rank r's
// stream does not depend on the world size, so a rank's samples are the same whether or not other
// ranks exist. For a fixed seed and stream, different ranks get different seeds (each step is a
// bijection of 64-bit words); across streams a collision is as unlikely as between random seeds.
#include <torch/torch.h>

#include <cstdint>

namespace grpo::dist {

/// SplitMix64 (Steele, Lea, Flood 2014; Vigna's reference splitmix64.c): advances `state` by the
/// golden gamma and returns the mixed output.
uint64_t splitmix64(uint64_t& state);

/// Seed of stream `stream` of rank `rank` under the run seed `seed`: s = seed; h = sm(s);
/// s = h ^ rank; h = sm(s); s = h ^ stream; return sm(s), with sm = splitmix64. Deterministic,
/// independent of world size.
uint64_t derive_seed(uint64_t seed, int64_t rank, uint64_t stream = 0);

/// A fresh generator for `device` (CPU or CUDA), seeded with derive_seed(seed, rank, stream).
at::Generator make_rank_generator(uint64_t seed, int64_t rank, uint64_t stream = 0,
                                  torch::Device device = torch::kCPU);

}  // namespace grpo::dist
