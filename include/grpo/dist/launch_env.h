#pragma once
// Where this process sits in a multi-process run, read from the variables that torchrun (and
// `grpo launch`) or SLURM set. No LibTorch here: this is plain parsing, testable on its own.
#include <functional>
#include <string>

namespace grpo::dist {

/// This process's place in the run. World size 1 (rank 0, no rendezvous) when nothing is set.
struct LaunchEnv {
  int rank = 0;               // global rank, 0..world_size-1
  int world_size = 1;
  int local_rank = 0;         // rank on this node; picks the GPU
  int local_world_size = 1;   // processes on this node
  std::string master_addr = "127.0.0.1";  // host of the rendezvous TCPStore (rank 0's node)
  int master_port = 29500;
  // torchrun's agent already serves the TCPStore on master_port
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects as a client.
  bool agent_store = false;
  int restart_count = 0;      // TORCHELASTIC_RESTART_COUNT: keeps a restarted group's keys apart
  std::string source = "default";  // "torchrun", "slurm" or "default": for log lines and errors
};

/// Looks up an environment variable; nullptr when unset. Tests pass a map-backed one.
using GetEnv = std::function<const char*(const char*)>;

/// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun's
/// names); when RANK/WORLD_SIZE are unset, falls back to SLURM_PROCID, SLURM_NTASKS,
/// SLURM_LOCALID, SLURM_NTASKS_PER_NODE / SLURM_STEP_TASKS_PER_NODE, with MASTER_ADDR defaulting
/// to the first host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST and MASTER_PORT to 29500.
/// Throws grpo::InputError naming the variable when a value is not an integer, out of range
/// (rank >= world size, local rank >= local world size), or only half of a pair is set.
LaunchEnv read_launch_env(const GetEnv& getenv);

/// read_launch_env over the real process environment.
LaunchEnv read_launch_env();

/// First host of a SLURM node list in its compressed form: "node[03-05,9],gpu1" -> "node03",
/// "a-b1,c" -> "a-b1". Throws grpo::InputError on an empty or malformed list.
std::string first_slurm_host(const std::string& nodelist);

/// Tasks on the first node of a SLURM tasks-per-node list: "4(x2),3" -> 4, "2" -> 2.
/// Throws grpo::InputError when malformed.
int first_slurm_tasks_per_node(const std::string& spec);

}  // namespace grpo::dist
