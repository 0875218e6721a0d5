// PythonWarmPool's short exit: a program that ends without an exception leaves its pre-started
// interpreter through os._exit once the exit steps a program can see have run (threads joined,
// atexit handlers, stdout/stderr flushed), not through the interpreter's full finalization. The
// reference is a cold Sandbox::run of the same program (a plain `python3 -B main.py`).
#include <gtest/gtest.h>

#include <chrono>
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

// Which exit ran shows in what a program leaves behind: the interpreter's own exit calls atexit
// handlers with no Python frame below them (a cold run prints False) and, clearing sys.modules,
// finalizes a module object the program put there ("finalized"); the short exit calls the handlers
// from the bootstrap's frame (True) and ends the process before any finalizer.
TEST(PythonWarmPoolExit, NormalEndTakesTheShortExit) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(1);
  const std::string probe =
      "import atexit, sys\natexit.register(lambda: print('below', sys._getframe().f_back is not None))\n"
      "class A:\n    def __del__(self):\n        sys.__stdout__.write('finalized\\n')\n"
      "sys.modules['grpo_probe'] = A()\nprint('main')\n";
  const SandboxResult c = cold(probe);
  EXPECT_EQ(c.stdout_data, "main\nbelow False\nfinalized\n");
  ASSERT_TRUE(wait_idle(pool, 1));
  bool warm = false;
  const SandboxResult w = pool.run(probe, &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(w.status, SandboxStatus::OK);
  EXPECT_EQ(w.exit_code, 0);
  EXPECT_EQ(w.stdout_data, "main\nbelow True\n");
  // An exception (SystemExit here) leaves the normal way, as in a cold run.
  const std::string raising = probe + "raise SystemExit(4)\n";
  ASSERT_TRUE(wait_idle(pool, 1));
  const SandboxResult e = pool.run(raising, &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(e.exit_code, 4);
  EXPECT_EQ(e.stdout_data, "main\nbelow False\nfinalized\n");
  EXPECT_EQ(e.stdout_data, cold(raising).stdout_data);
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}

// What the short exit keeps of a normal exit gives a cold run's output: a non-daemon thread still
// running when the program ends, atexit output (and an atexit handler's error), output written to
// sys.__stdout__ after sys.stdout was replaced, unterminated lines on both streams, a closed stdout.
TEST(PythonWarmPoolExit, ShortExitKeepsWhatAProgramSees) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(1);
  const std::vector<std::string> programs = {
      "import threading, time\ndef w():\n    time.sleep(0.05)\n    print('thread')\n"
      "threading.Thread(target=w).start()\nprint('main')\n",
      "import atexit\natexit.register(print, 'at exit')\natexit.register(lambda: 1 / 0)\nprint('main')\n",
      "import io, sys\nsys.stdout = io.StringIO()\nprint('hidden')\nsys.__stdout__.write('real')\n",
      "import sys\nsys.stdout.write('no newline')\nsys.stderr.write('err')\n",
      "import os\nos.write(1, b'raw ')\nprint('buffered')\n",
      "import sys\nprint('lost')\nsys.stdout.close()\n",
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
    // The atexit error's message names the lambda by its address, which differs run to run.
    if (src.find("1 / 0") == std::string::npos) EXPECT_EQ(w.stderr_data, c.stderr_data) << src;
    else EXPECT_NE(w.stderr_data.find("ZeroDivisionError"), std::string::npos) << w.stderr_data;
  }
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}
