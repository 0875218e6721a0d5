// Sandbox throughput: trivial Python programs per second through the sandbox (SandboxPool, N
// workers) beside plain `python3 -c pass` subprocesses (posix_spawn + wait, N at once) in the same
// run, alternating rounds so that machine load hits both alike. Prints both rates and the ratio
// (target: the sandbox at >= 60% of the plain rate).
//   bench_sandbox_throughput [programs_per_round=40] [rounds=5] [workers=2]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "grpo/reward/sandbox.h"
#include "grpo/reward/sandbox_pool.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// n runs of `python -c pass`, `workers` at a time.
double plain_round(const std::string& python, int n, int workers) {
  std::atomic<int> next{0}, failures{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w)
    ts.emplace_back([&] {
      while (next.fetch_add(1) < n) {
        pid_t pid = 0;
        const char* argv[] = {python.c_str(), "-c", "pass", nullptr};
        // The sandbox's environment, so both interpreters start alike (no user site-packages).
        const char* envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp", nullptr};
        // In its own session like a sandboxed program (with autogroup scheduling, a new session
        // is a new scheduling group: leaving it out would tilt the comparison on a loaded machine).
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
        int rc = posix_spawn(&pid, python.c_str(), nullptr, &attr, const_cast<char**>(argv), const_cast<char**>(envp));
        posix_spawnattr_destroy(&attr);
        if (rc != 0) {
          ++failures;
          continue;
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++failures;
      }
    });
  for (auto& t : ts) t.join();
  double s = seconds_since(t0);
  if (failures) std::fprintf(stderr, "plain: %d failures\n", failures.load());
  return s;
}

double sandbox_round(const grpo::reward::SandboxPool& pool, int n) {
  std::vector<grpo::reward::SandboxJob> jobs(static_cast<size_t>(n));
  for (auto& j : jobs) j.request.source = "pass\n";
  auto t0 = std::chrono::steady_clock::now();
  auto out = pool.run_batch(jobs);
  double s = seconds_since(t0);
  int bad = 0;
  for (auto& v : out)
    if (v.at(0).status != grpo::reward::SandboxStatus::OK) ++bad;
  if (bad) std::fprintf(stderr, "sandbox: %d runs not ok\n", bad);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 40;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  const int workers = argc > 3 ? std::atoi(argv[3]) : 2;
  grpo::config::SandboxConfig cfg;
  cfg.num_workers = workers;
  grpo::reward::Sandbox sandbox(cfg);
  grpo::reward::SandboxPool pool(sandbox, workers);
  const std::string python = "/usr/bin/python3";  // the interpreter the sandbox resolves too
  std::printf("isolation: %s, %d workers, %d programs x %d rounds\n", sandbox.isolation().describe().c_str(), workers,
              n, rounds);
  sandbox_round(pool, workers);  // warm-up (page cache, first clone)
  plain_round(python, workers, workers);
  double plain_s = 0, sandbox_s = 0;
  for (int r = 0; r < rounds; ++r) {
    plain_s += plain_round(python, n, workers);
    sandbox_s += sandbox_round(pool, n);
  }
  const double total = double(n) * rounds;
  const double plain_rate = total / plain_s, sandbox_rate = total / sandbox_s;
  std::printf("plain   python3 -c pass : %8.1f programs/s\n", plain_rate);
  std::printf("sandbox python3 main.py : %8.1f programs/s\n", sandbox_rate);
  std::printf("ratio sandbox/plain     : %8.2f (target >= 0.60)\n", sandbox_rate / plain_rate);
  return 0;
}
