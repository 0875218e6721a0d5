// Rendezvous variables: torchrun's names, SLURM's fallback, defaults, and bad values.
#include <gtest/gtest.h>

#include <map>

#include "grpo/dist/launch_env.h"
#include "grpo/util/error.h"

namespace grpo::dist {
namespace {

LaunchEnv read(const std::map<std::string, std::string>& vars) {
  return read_launch_env([&](const char* k) -> const char* {
    auto it = vars.find(k);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, NothingSetIsOneProcess) {
  auto e = read({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_EQ(e.source, "default");
}

TEST(LaunchEnv, TorchrunVariables) {
  auto e = read({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "4"},
                 {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29512"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                 {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 29512);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart_count, 2);
  EXPECT_EQ(e.source, "torchrun");
}

TEST(LaunchEnv, TorchrunWinsOverSlurm) {
  auto e = read({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}});
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_FALSE(e.agent_store);
}

TEST(LaunchEnv, SlurmFallback) {
  auto e = read({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"},
                 {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"}, {"SLURM_STEP_NODELIST", "gpu[07-08]"}});
  EXPECT_EQ(e.rank, 6);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_addr, "gpu07");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.source, "slurm");
  // An explicit MASTER_ADDR/PORT (set in the sbatch script) wins over the node list.
  auto f = read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "a1,b2"},
                 {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "12345"}});
  EXPECT_EQ(f.master_addr, "10.0.0.1");
  EXPECT_EQ(f.master_port, 12345);
  EXPECT_EQ(f.local_world_size, 2);  // no tasks-per-node variable: one node assumed
}

TEST(LaunchEnv, SlurmNodeLists) {
  EXPECT_EQ(first_slurm_host("node[03-05,9],gpu1"), "node03");
  EXPECT_EQ(first_slurm_host("a-b1,c"), "a-b1");
  EXPECT_EQ(first_slurm_host("single"), "single");
  EXPECT_EQ(first_slurm_host("rack[2]-n[10-11]"), "rack2-n10");
  EXPECT_THROW(first_slurm_host(""), InputError);
  EXPECT_THROW(first_slurm_host("node[1-2"), InputError);
  EXPECT_THROW(first_slurm_host("node[x]"), InputError);
  EXPECT_EQ(first_slurm_tasks_per_node("4(x2),3"), 4);
  EXPECT_EQ(first_slurm_tasks_per_node("2"), 2);
  EXPECT_THROW(first_slurm_tasks_per_node("(x2)"), InputError);
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  auto msg = [](const std::map<std::string, std::string>& v) {
    try {
      read(v);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x' is not an integer"), std::string::npos);
  EXPECT_NE(msg({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 is not below the world size 2"), std::string::npos);
  EXPECT_NE(msg({{"RANK", "0"}}).find("RANK is set but WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(msg({{"WORLD_SIZE", "2"}}).find("WORLD_SIZE is set but RANK is not"), std::string::npos);
  EXPECT_NE(msg({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT=70000 is out of range"),
            std::string::npos);
  EXPECT_NE(msg({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}})
                .find("local rank 3 is not below the local world size 2"),
            std::string::npos);
  EXPECT_NE(msg({{"SLURM_PROCID", "0"}}).find("SLURM_NTASKS is not"), std::string::npos);
}

}  // namespace
}  // namespace grpo::dist
