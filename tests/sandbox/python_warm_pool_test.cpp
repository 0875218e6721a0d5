// PythonWarmPool: interpreters pre-started in the sandbox. What a program sees and what becomes of
// it must be what a cold Sandbox::run of the same program gives (the reference here), one
// interpreter serves one program, dead or stopped interpreters cost at most their own call, the
// wall-clock limit counts from the hand-over, and nothing is left running once the pool is emptied.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "grpo/reward/python_warm_pool.h"
#include "sandbox_test_util.h"
#include "warm_pool_test_util.h"

using namespace grpo;
using namespace grpo::reward;
using grpo::test::cold;
using grpo::test::pids_with_marker;
using grpo::test::run_marker;
using grpo::test::shared_sandbox;
using grpo::test::wait_idle;

// The program's view and its outcome equal a cold run's: __main__'s names, __file__, argv,
// sys.path[0], an empty stdin, tracebacks (source lines included), a SyntaxError, exit codes.
TEST(PythonWarmPool, ProgramRunsAsAColdRunDoes) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  ASSERT_TRUE(pool.available());
  pool.set_idle_target(1);
  const std::vector<std::string> programs = {
      "import sys\nprint(__name__, __file__, sys.argv, sys.path[0], repr(sys.stdin.read()))\nprint(sorted(globals()))\n",
      "def f(x):\n    return 1 / x\n\nprint('before')\nf(0)\n",
      "x = (\n",
      "import sys\nprint('bye')\nsys.exit(3)\n",
      "input()\n",
      "import sys\nsys.stderr.write('err\\n')\nraise SystemExit('custom')\n",
      "try:\n    1 / 0\nexcept Exception as e:\n    raise ValueError('v') from e\n",
  };
  for (const auto& src : programs) {
    ASSERT_TRUE(wait_idle(pool, 1));
    bool warm = false;
    const SandboxResult w = pool.run(src, &warm);
    const SandboxResult c = cold(src);
    EXPECT_TRUE(warm) << src;
    EXPECT_EQ(status_name(w.status), status_name(c.status)) << src;
    EXPECT_EQ(w.exit_code, c.exit_code) << src;
    EXPECT_EQ(w.stdout_data, c.stdout_data) << src;
    EXPECT_EQ(w.stderr_data, c.stderr_data) << src;
  }
  EXPECT_NE(cold(programs[1]).stderr_data.find("return 1 / x"), std::string::npos);  // the reference shows source lines
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// One interpreter per program: a file written by one call is not there for the next, every call
// was served by a pre-started interpreter, and each took one start.
TEST(PythonWarmPool, EachCallGetsAFreshInterpreter) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(1);
  const std::string src =
      "import os\nprint(os.path.exists('/tmp/state'), os.path.exists('/dev/shm/state'))\n"
      "open('/tmp/state', 'w').write('x')\nopen('/dev/shm/state', 'w').write('x')\n";
  constexpr int kCalls = 5;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(wait_idle(pool, 1));
    bool warm = false;
    const SandboxResult r = pool.run(src, &warm);
    EXPECT_TRUE(warm) << i;
    EXPECT_EQ(r.status, SandboxStatus::OK) << i << ": " << r.stderr_data;
    EXPECT_EQ(r.stdout_data, "False False\n") << i;
  }
  ASSERT_TRUE(wait_idle(pool, 1));
  EXPECT_EQ(pool.starts(), kCalls + 1);  // one per call, and the one waiting now
  pool.set_idle_target(0);
  EXPECT_TRUE(pool.idle_init_pids().empty());
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// A pre-started interpreter killed while it waits is not used: the call runs cold, and the pool
// starts a replacement that the next call uses.
TEST(PythonWarmPool, KilledInterpreterIsReplaced) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(1);
  ASSERT_TRUE(wait_idle(pool, 1));
  const int victim = pool.idle_init_pids().at(0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  siginfo_t si{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(victim), &si, WEXITED | WNOWAIT), 0);  // dead, not yet reaped
  bool warm = true;
  SandboxResult r = pool.run("print(7)\n", &warm);
  EXPECT_FALSE(warm);
  EXPECT_EQ(r.status, SandboxStatus::OK) << r.error << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "7\n");
  ASSERT_TRUE(wait_idle(pool, 1));
  EXPECT_NE(pool.idle_init_pids().at(0), victim);
  r = pool.run("print(8)\n", &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(r.stdout_data, "8\n");
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// A pre-started interpreter that hangs (stopped) costs its call the wall-clock limit and nothing
// else: the call times out at the limit, the next call gets a working interpreter.
TEST(PythonWarmPool, HungInterpreterCostsOnlyItsCall) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(1);
  ASSERT_TRUE(wait_idle(pool, 1));
  const auto pids = pids_with_marker(run_marker());
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(kill(pids[0], SIGSTOP), 0);
  bool warm = false;
  SandboxResult r = pool.run("print(1)\n", &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(r.status, SandboxStatus::TIMEOUT);
  const double limit = shared_sandbox().config().wall_time_s;
  EXPECT_GE(r.wall_s, limit);
  EXPECT_LT(r.wall_s, limit + 2.0);
  ASSERT_TRUE(wait_idle(pool, 1));
  r = pool.run("print(1)\n", &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(r.stdout_data, "1\n");
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// The wall-clock limit counts from the hand-over: an interpreter idle for longer than the limit
// still gives its program the whole limit, and a program that sleeps past it is stopped there.
TEST(PythonWarmPool, WallLimitCountsFromTheHandOver) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  auto cfg = grpo::test::small_limits();
  cfg.wall_time_s = 1.0;
  const Sandbox sb(cfg);
  PythonWarmPool pool(sb, {run_marker()});
  pool.set_idle_target(1);
  ASSERT_TRUE(wait_idle(pool, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  bool warm = false;
  SandboxResult r = pool.run("import time\ntime.sleep(0.5)\nprint('ok')\n", &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(r.status, SandboxStatus::OK) << status_name(r.status);
  EXPECT_EQ(r.stdout_data, "ok\n");
  ASSERT_TRUE(wait_idle(pool, 1));
  r = pool.run("import time\ntime.sleep(60)\n", &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(r.status, SandboxStatus::TIMEOUT);
  EXPECT_GE(r.wall_s, 1.0);
  EXPECT_LT(r.wall_s, 3.0);
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// Hostile programs end as they do cold (fork bomb: timeout; flood: output limit; CPU loop:
// timeout; memory: memory limit), and leave nothing behind.
TEST(PythonWarmPool, HostileProgramsEndAsColdRunsDo) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(1);
  const std::vector<std::pair<std::string, SandboxStatus>> programs = {
      {"import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", SandboxStatus::TIMEOUT},
      {"while True:\n    print('x' * 65536)\n", SandboxStatus::OUTPUT_LIMIT},
      {"while True:\n    pass\n", SandboxStatus::TIMEOUT},
      {"b = bytearray(1 << 30)\n", SandboxStatus::MEMORY_LIMIT},
  };
  for (const auto& [src, status] : programs) {
    ASSERT_TRUE(wait_idle(pool, 1));
    bool warm = false;
    const SandboxResult r = pool.run(src, &warm);
    EXPECT_TRUE(warm);
    EXPECT_EQ(status_name(r.status), status_name(status)) << src;
    EXPECT_EQ(status_name(cold(src).status), status_name(status)) << src;
  }
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// A replacement for an interpreter taken starts once the call has ended, not while it runs (its
// start would take the CPU the call runs on), unless no interpreter is left idle or starting.
TEST(PythonWarmPool, ReplacementsWaitForTheCallsToEnd) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(2);
  ASSERT_TRUE(wait_idle(pool, 2));
  ASSERT_EQ(pool.starts(), 2);
  const std::string slow = "import time\ntime.sleep(1.0)\nprint('ok')\n";
  auto call = [&](std::atomic<int>& done, bool& warm, SandboxResult& r) {
    r = pool.run(slow, &warm);
    ++done;
  };
  // One call: one interpreter is still idle, so nothing starts while the call runs.
  std::atomic<int> done{0};
  bool warm1 = false, warm2 = false;
  SandboxResult r1, r2;
  std::thread t1(call, std::ref(done), std::ref(warm1), std::ref(r1));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(done.load(), 0);
  EXPECT_EQ(pool.starts(), 2);
  EXPECT_EQ(pool.idle_init_pids().size(), 1u);
  t1.join();
  EXPECT_TRUE(warm1);
  EXPECT_EQ(r1.stdout_data, "ok\n");
  ASSERT_TRUE(wait_idle(pool, 2));  // the replacement, once the call ended
  EXPECT_EQ(pool.starts(), 3);
  // Two calls take both: with none left for a next call, one replacement starts while they run.
  done = 0;
  std::thread t2(call, std::ref(done), std::ref(warm1), std::ref(r1));
  std::thread t3(call, std::ref(done), std::ref(warm2), std::ref(r2));
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  while (pool.starts() < 4 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(done.load(), 0);
  EXPECT_EQ(pool.starts(), 4);
  t2.join();
  t3.join();
  EXPECT_TRUE(warm1 && warm2);
  ASSERT_TRUE(wait_idle(pool, 2));
  EXPECT_EQ(pool.starts(), 5);
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}
