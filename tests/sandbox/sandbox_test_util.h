#pragma once
// Shared helpers of the sandbox tests: one sandbox with small limits (so the adversarial suite
// stays fast), and probes of the host that a run must leave untouched.
#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "grpo/reward/sandbox.h"

namespace grpo::test {

inline config::SandboxConfig small_limits() {
  config::SandboxConfig c;
  c.num_workers = 2;
  c.wall_time_s = 3.0;
  c.cpu_time_s = 1.0;
  c.memory_mb = 256;
  c.max_processes = 16;
  c.max_file_size_mb = 4;
  c.max_open_files = 32;
  c.max_output_bytes = 4096;
  c.compile_wall_time_s = 20.0;  // g++ on a loaded 2-core machine
  c.compile_cpu_time_s = 10.0;
  c.compile_memory_mb = 1024;
  c.work_dir_mb = 16;
  return c;
}

/// One sandbox for the whole test binary (the constructor probes the kernel).
inline const reward::Sandbox& shared_sandbox() {
  static reward::Sandbox* sb = new reward::Sandbox(small_limits());
  return *sb;
}

/// Skips a test whose expectations need an isolation feature this kernel refused (the sandbox
/// then runs with a logged fallback; docs/sandbox.md).
#define GRPO_REQUIRE_ISOLATION(feature)                                                      \
  do {                                                                                      \
    if (!::grpo::test::shared_sandbox().isolation().feature)                                \
      GTEST_SKIP() << "this kernel refused the sandbox feature " #feature;                 \
  } while (0)

/// Passed as argv[1] to every program this test process runs, so that the process's own leftovers
/// can be found on the host by command line (other test processes may run sandboxes meanwhile).
inline std::string run_marker() { return "grpo-sandbox-test-" + std::to_string(getpid()); }

inline reward::SandboxResult run_py(const std::string& src, const std::string& in = "") {
  reward::SandboxRequest r;
  r.language = config::CodeLanguage::PYTHON;
  r.source = src;
  r.args = {run_marker()};
  return shared_sandbox().run(r, in);
}

inline reward::SandboxResult run_cpp(const std::string& src, const std::string& in = "") {
  reward::SandboxRequest r;
  r.language = config::CodeLanguage::CPP;
  r.source = src;
  r.args = {run_marker()};
  return shared_sandbox().run(r, in);
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Host pids whose command line contains `marker`.
inline std::vector<int> pids_with_marker(const std::string& marker) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::string cmd = slurp("/proc/" + std::string(e->d_name) + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(marker) != std::string::npos) out.push_back(pid);
  }
  closedir(d);
  return out;
}

}  // namespace grpo::test
