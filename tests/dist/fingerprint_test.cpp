// Cross-rank agreement on version, build and config; and per-rank random streams.
#include <gtest/gtest.h>

#include <set>

#include "common/subprocess.h"
#include "grpo/dist/fingerprint.h"
#include "grpo/dist/rank_rng.h"
#include "grpo/util/error.h"

namespace grpo::dist {
namespace {

std::string error_of(const std::vector<std::string>& fps) {
  try {
    check_fingerprints(fps);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Fingerprint, Fnv1a64KnownVectors) {
  // Published FNV-1a 64-bit test vectors (Fowler/Noll/Vo reference code).
  EXPECT_EQ(fnv1a64_hex(""), "cbf29ce484222325");
  EXPECT_EQ(fnv1a64_hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(fnv1a64_hex("foobar"), "85944171f73967e8");
}

TEST(Fingerprint, CarriesVersionGitAndConfigHash) {
  auto fp = run_fingerprint("a: 1\n");
  auto b = build_info();
  EXPECT_FALSE(b.version.empty());
  EXPECT_FALSE(b.git.empty());
  EXPECT_EQ(fp, "grpo=" + b.version + " git=" + b.git + " config=" + fnv1a64_hex("a: 1\n"));
  EXPECT_NE(run_fingerprint("a: 2\n"), fp);
}

TEST(Fingerprint, MismatchNamesRankAndField) {
  const std::string a = "grpo=0.1.0 git=abc config=0000000000000001";
  EXPECT_EQ(error_of({a, a, a}), "no error");
  auto cfg = error_of({a, a, "grpo=0.1.0 git=abc config=0000000000000002"});
  EXPECT_NE(cfg.find("rank 2 differs from rank 0 in resolved config"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("'0000000000000001'"), std::string::npos) << cfg;
  auto ver = error_of({a, "grpo=0.2.0 git=def config=0000000000000001"});
  EXPECT_NE(ver.find("rank 1 differs from rank 0 in git revision"), std::string::npos) << ver;
  EXPECT_NE(ver.find("grpo version (grpo): rank 0 has '0.1.0', rank 1 has '0.2.0'"), std::string::npos) << ver;
}

TEST(RankRng, SplitMix64MatchesPython) {
  // An independent implementation (Python integers, Vigna's splitmix64.c) of derive_seed.
  const char* py =
      "M=(1<<64)-1\n"
      "def sm(s):\n"
      "  s=(s+0x9e3779b97f4a7c15)&M; z=s\n"
      "  z=((z^(z>>30))*0xbf58476d1ce4e5b9)&M; z=((z^(z>>27))*0x94d049bb133111eb)&M\n"
      "  return s, z^(z>>31)\n"
      "def derive(seed,rank,stream):\n"
      "  _,h=sm(seed); _,h=sm(h^rank); _,h=sm(h^stream); return h\n"
      "for seed,rank,stream in [(0,0,0),(42,1,0),(42,0,7),(2**64-1,123,2**63)]: print(derive(seed,rank,stream))\n"
      "s=1234567\n"
      "for _ in range(3):\n"
      "  s,z=sm(s); print(z)\n";
  auto r = testing::run_cmd(std::string(GRPO_PYTHON) + " -c '" + py + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream is(r.out);
  std::vector<uint64_t> want;
  std::string line;
  while (std::getline(is, line)) want.push_back(std::stoull(line));
  ASSERT_EQ(want.size(), 7u);
  EXPECT_EQ(derive_seed(0, 0, 0), want[0]);
  EXPECT_EQ(derive_seed(42, 1, 0), want[1]);
  EXPECT_EQ(derive_seed(42, 0, 7), want[2]);
  EXPECT_EQ(derive_seed(~0ull, 123, 1ull << 63), want[3]);
  uint64_t s = 1234567;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(splitmix64(s), want[4 + i]);
}

TEST(RankRng, StreamsAreReproducibleAndDistinct) {
  auto a = torch::rand({4}, make_rank_generator(7, 1, 0));
  auto b = torch::rand({4}, make_rank_generator(7, 1, 0));
  auto c = torch::rand({4}, make_rank_generator(7, 2, 0));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  std::set<uint64_t> seeds;
  for (int rank = 0; rank < 64; ++rank)
    for (uint64_t stream = 0; stream < 16; ++stream) seeds.insert(derive_seed(42, rank, stream));
  EXPECT_EQ(seeds.size(), 64u * 16u);
}

}  // namespace
}  // namespace grpo::dist
