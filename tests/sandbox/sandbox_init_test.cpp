// The run's init is the small grpo-sandbox-init executable, not a copy of the host: a program's
// peak memory is its own, however much memory the host holds, and a missing executable falls
// back to the fork path with the same results.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <vector>

#include "sandbox_test_util.h"

namespace grpo::test {
namespace {

TEST(SandboxInit, PeakMemoryIsTheProgramsNotTheHosts) {
  // 512 MiB resident in this (host) process. An exec from a copy of it reports that as the new
  // program's ru_maxrss; the program itself touches 64 MiB.
  std::vector<char> host(512u << 20);
  std::memset(host.data(), 1, host.size());
  auto r = run_py("b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096):\n    b[i] = 1\n");
  ASSERT_EQ(r.status, reward::SandboxStatus::OK) << r.error << r.stderr_data;
  EXPECT_GE(r.peak_memory_bytes, 64LL << 20);
  // Python itself adds ~10 MiB; 160 MiB leaves room for allocator slack and stays far below 512.
  EXPECT_LE(r.peak_memory_bytes, 160LL << 20);
  EXPECT_EQ(host[12345], 1);
}

TEST(SandboxInit, WithoutTheExecutableRunsStillWork) {
  ::setenv("GRPO_SANDBOX_INIT", "", 1);  // as if grpo-sandbox-init were missing
  reward::Sandbox fallback(small_limits());
  ::unsetenv("GRPO_SANDBOX_INIT");
  reward::SandboxRequest req;
  req.language = config::CodeLanguage::PYTHON;
  req.source = "import sys\nprint(sys.stdin.read().upper())\n";
  req.args = {run_marker()};
  auto r = fallback.run(req, "abc");
  ASSERT_EQ(r.status, reward::SandboxStatus::OK) << r.error << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "ABC\n");
  auto hog = fallback.run([&] {
    auto q = req;
    q.source = "x = bytearray(1 << 30)\n";
    return q;
  }());
  EXPECT_EQ(hog.status, reward::SandboxStatus::MEMORY_LIMIT);
}

TEST(SandboxInit, TheExecutableRefusesToBeStartedByHand) {
  // Without the plan descriptor it exits with a usage message instead of doing anything.
  const std::string exe = GRPO_SANDBOX_INIT_TEST_PATH;
  EXPECT_EQ(::system((exe + " > /dev/null 2>&1").c_str()) >> 8, 2);
  EXPECT_EQ(::system((exe + " 0 < /dev/null > /dev/null 2>&1").c_str()) >> 8, 4);  // not a plan
}

}  // namespace
}  // namespace grpo::test
