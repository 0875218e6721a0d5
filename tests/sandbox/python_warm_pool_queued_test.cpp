// PythonWarmPool::set_calls_queued: while a caller has calls queued for run(), a replacement for
// an interpreter taken waits as it does while run() runs (its start would take the CPU those calls
// need between their runs), unless none is left idle or starting.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "grpo/reward/python_warm_pool.h"
#include "sandbox_test_util.h"

using namespace grpo;
using namespace grpo::reward;
using grpo::test::pids_with_marker;
using grpo::test::run_marker;
using grpo::test::shared_sandbox;

namespace {

bool wait_idle(const PythonWarmPool& pool, size_t n) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (pool.idle_init_pids().size() >= n && pids_with_marker(run_marker()).size() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace

// Two idle, one call taken while the caller says 2 calls are queued: after the call ends no
// replacement starts (pool.starts() counts the interpreters started) until the count drops to 0.
// Without the count, the replacement starts as soon as run() returns (PythonWarmPool's
// ReplacementsWaitForTheCallsToEnd).
TEST(PythonWarmPoolQueued, ReplacementsWaitWhileCallsAreQueued) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  PythonWarmPool pool(shared_sandbox(), {run_marker()});
  pool.set_idle_target(2);
  ASSERT_TRUE(wait_idle(pool, 2));
  ASSERT_EQ(pool.starts(), 2);
  pool.set_calls_queued(2);
  bool warm = false;
  const SandboxResult r = pool.run("print('ok')\n", &warm);
  EXPECT_TRUE(warm);
  EXPECT_EQ(r.stdout_data, "ok\n");
  pool.set_calls_queued(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(pool.starts(), 2);
  EXPECT_EQ(pool.idle_init_pids().size(), 1u);
  pool.set_calls_queued(0);
  ASSERT_TRUE(wait_idle(pool, 2));
  EXPECT_EQ(pool.starts(), 3);
  // With none left idle, one starts for the next call even while calls are queued.
  pool.set_calls_queued(3);
  EXPECT_TRUE(pool.run("print(1)\n", &warm).stdout_data == "1\n" && warm);
  EXPECT_TRUE(pool.run("print(2)\n", &warm).stdout_data == "2\n" && warm);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (pool.starts() < 4 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(pool.starts(), 4);
  pool.set_calls_queued(0);
  pool.set_idle_target(0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
}
