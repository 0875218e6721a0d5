// `grpo launch`: N local data-parallel workers of a grpo command (see grpo/dist/launcher.h).
#include <unistd.h>

#include <climits>
#include <iostream>

#include "grpo/cli/commands.h"
#include "grpo/dist/launcher.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::cli {
namespace {

std::string self_executable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error("launch: cannot resolve /proc/self/exe to start the workers");
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

void register_launch_commands(CLI::App& app) {
  static dist::LaunchOptions opts;
  static bool no_prefix = false;
  auto* sub = app.add_subcommand(
      "launch",
      "Run a grpo command in N local data-parallel processes (torchrun's variables; for several nodes use torchrun "
      "--no-python or SLURM, see docs/distributed.md). Usage: grpo launch --nproc N -- train CONFIG");
  sub->add_option("--nproc", opts.nproc, "Worker processes on this node (one per GPU)")->required()->check(
      CLI::Range(1, 4096));
  sub->add_option("--master-port", opts.master_port, "TCPStore port on the master address; default: a free port")
      ->check(CLI::Range(1, 65535));
  sub->add_option("--master-addr", opts.master_addr, "Address rank 0 serves the TCPStore on")->capture_default_str();
  sub->add_option("--grace-s", opts.grace_s, "Seconds between SIGTERM and SIGKILL when stopping the workers")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  sub->add_option("--program", opts.program,
                  "Run this executable instead of grpo (any program that reads the torchrun variables)");
  sub->add_flag("--no-prefix", no_prefix, "Do not prefix the workers' output lines with [rank N]");
  sub->add_option("command", opts.args, "The grpo subcommand and its arguments, after --")->required();
  sub->callback([] {
    if (opts.program.empty()) opts.program = self_executable();
    opts.prefix_output = !no_prefix;
    auto res = dist::launch_workers(opts);
    if (res.exit_code != 0) throw Error(str("launch: ", res.message));
  });
}

}  // namespace grpo::cli
