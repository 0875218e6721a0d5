#pragma once
// What the multi-process benchmarks (dist_bench, shard_bench) share: "--name value" flags, a
// millisecond clock, and one configuration run through grpo's own launcher, the benchmark
// executable re-running itself as every worker.
#include <unistd.h>

#include <array>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grpo/dist/launcher.h"

namespace grpo::bench {

using Clock = std::chrono::steady_clock;
inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// "--name value" pairs of the command line, by name without the dashes.
inline std::map<std::string, std::string> flags(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 1; i + 1 < argc; i += 2) f[std::string(argv[i]).substr(2)] = argv[i + 1];
  return f;
}

/// The path of this executable (the program every worker runs); empty if /proc cannot say.
inline std::string self_exe() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return {};
  self[n] = 0;
  return self;
}

/// Runs `program args` on `nproc` processes through grpo::dist::launch_workers and returns the
/// three numbers the workers wrote to `out`; nullopt when the launch failed (reported on stderr
/// after `what`).
inline std::optional<std::array<double, 3>> launch_and_read(const std::string& program, int nproc,
                                                            std::vector<std::string> args,
                                                            const std::filesystem::path& out, const std::string& what) {
  grpo::dist::LaunchOptions o;
  o.nproc = nproc;
  o.program = program;
  o.args = std::move(args);
  auto r = grpo::dist::launch_workers(o);
  if (r.exit_code != 0) {
    std::cerr << what << ": " << r.message << "\n";
    return std::nullopt;
  }
  std::ifstream in(out);
  std::array<double, 3> v{};
  in >> v[0] >> v[1] >> v[2];
  return v;
}

}  // namespace grpo::bench
