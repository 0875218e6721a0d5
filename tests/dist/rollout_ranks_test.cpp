// The transport of dedicated rollout ranks (grpo/dist/rollout_ranks.h), 2 CPU processes over Gloo:
// the trainer's weights arrive bit for bit (float32 and float64 on the CPU) and its own stay
// untouched, byte messages of every size (empty, NULs, 3 MiB) arrive intact, and the rank roles.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/subprocess.h"
#include "grpo/dist/rollout_ranks.h"
#include "grpo/util/error.h"

namespace {

namespace fs = std::filesystem;
using grpo::testing::run_cmd;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> v;
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

TEST(RolloutRanks, RolesPutTrainersFirstAndKeyOnTheGlobalIndex) {
  grpo::dist::RankRoles r(4, 1);
  EXPECT_EQ(r.num_trainers(), 3);
  EXPECT_FALSE(r.is_rollout(0));
  EXPECT_FALSE(r.is_rollout(2));
  EXPECT_TRUE(r.is_rollout(3));
  EXPECT_EQ(r.trainer_of(0, 2), 0);
  EXPECT_EQ(r.trainer_of(5, 2), 2);
  EXPECT_THROW(r.trainer_of(6, 2), grpo::InputError);
  grpo::dist::RankRoles two(5, 2);
  EXPECT_EQ(two.rollout_rank_of(0), 3);
  EXPECT_EQ(two.rollout_rank_of(1), 4);
  EXPECT_EQ(two.rollout_rank_of(2), 3);
  EXPECT_THROW(grpo::dist::RankRoles(2, 2), grpo::InputError);
  EXPECT_THROW(grpo::dist::RankRoles(2, -1), grpo::InputError);
}

TEST(RolloutRanks, TwoProcessesWeightsAndMessagesArriveExactly) {
  const auto dir = fs::temp_directory_path() / ("grpo_rollout_ranks_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string prefix = (dir / "w").string();
  auto r = run_cmd("timeout 120 " + std::string(GRPO_BIN) + " launch --nproc 2 --program " +
                   std::string(GRPO_TEST_BIN_DIR) + "/dist_rollout_ranks_worker -- --out " + prefix);
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("rank 1: done"), std::string::npos) << r.out;
  auto w0 = read_lines(prefix + ".rank0.txt"), w1 = read_lines(prefix + ".rank1.txt");
  // 7*5 + 33 + 24 values; the rollout rank started from zeros, so equality means they travelled.
  ASSERT_EQ(w0.size(), 92u);
  EXPECT_EQ(w0, w1);
  size_t nonzero = 0;
  for (const auto& v : w0) nonzero += std::stod(v) != 0.0;
  EXPECT_GT(nonzero, 80u);
  fs::remove_all(dir);
}

}  // namespace
