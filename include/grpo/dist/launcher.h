#pragma once
// `grpo launch`: a torchrun-like supervisor for one node. Starts N worker processes with the
// torchrun environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), prefixes their output with the rank, forwards SIGINT/SIGTERM, and when one worker
// fails stops the others (SIGTERM, SIGKILL after a grace period). No LibTorch here.
#include <string>
#include <vector>

namespace grpo::dist {

struct LaunchOptions {
  int nproc = 1;                          // workers on this node
  std::string master_addr = "127.0.0.1";
  int master_port = 0;                    // 0 = pick a free port
  std::string program;                    // executable to run (path)
  std::vector<std::string> args;          // its arguments (argv[1..])
  double grace_s = 10.0;                  // SIGTERM -> SIGKILL delay when stopping workers
  bool prefix_output = true;              // "[rank N] " before every line of a worker's output
};

struct LaunchOutcome {
  int exit_code = 0;     // 0 when every worker exited 0; 1 on a worker failure; 128+sig when interrupted
  int failed_rank = -1;  // first worker to fail, -1 if none
  std::string message;   // one line for the user when exit_code != 0
};

/// A TCP port on `host` that was free a moment ago (bind to port 0, read it back, close).
/// Throws grpo::Error when no socket can be bound.
int pick_free_port(const std::string& host = "127.0.0.1");

/// Runs the workers to completion as described above. Worker stdout goes to our stdout and
/// worker stderr to our stderr, line by line. Each worker is its own process group (so a
/// terminal's Ctrl-C reaches them only through us, once) and gets SIGTERM if this process dies.
/// Throws grpo::InputError for nproc < 1 or a program that is not executable.
LaunchOutcome launch_workers(const LaunchOptions& opts);

}  // namespace grpo::dist
