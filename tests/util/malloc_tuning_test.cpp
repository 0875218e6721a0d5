// util/malloc_tuning.h. A fresh process (this test binary re-run on one disabled test, so no
// earlier test has moved glibc's adaptive thresholds) allocates three 8 MiB blocks, touches them
// and frees them, four times over: the pattern of a decode step's transient tensors. With glibc's
// defaults the first free raises the mmap threshold to 8 MiB and the trim threshold to 16 MiB, so
// the 24 MiB freed at the heap top each round goes back to the kernel and the next round faults
// every page in again. After tune_malloc_for_cpu_tensors() it stays in the heap: the later rounds
// fault (almost) nothing. getrusage counts the faults. The user's own MALLOC_* settings are left
// alone.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "grpo/util/malloc_tuning.h"

namespace grpo::util {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

constexpr size_t kBlock = size_t{8} << 20;
constexpr long kRoundPages = 3 * static_cast<long>(kBlock / 4096);

// One round: three blocks allocated, every page touched, all freed (the last one first).
void one_round() {
  char* p[3];
  for (auto& b : p) {
    b = static_cast<char*>(std::malloc(kBlock));
    for (size_t i = 0; i < kBlock; i += 4096) b[i] = static_cast<char>(i);
  }
  asm volatile("" : : "r"(p) : "memory");
  for (int i = 2; i >= 0; --i) std::free(p[i]);
}

// Run only as a child (below): prints the page faults of rounds 3 and 4.
TEST(MallocTuningChild, DISABLED_Pattern) {
  const char* tune = std::getenv("GRPO_TEST_TUNE_MALLOC");
  ASSERT_NE(tune, nullptr);
  if (std::string(tune) == "1") ASSERT_TRUE(tune_malloc_for_cpu_tensors());
  one_round();
  one_round();
  const long f0 = minor_faults();
  one_round();
  one_round();
  std::printf("FAULTS %ld\n", minor_faults() - f0);
}

// The faults the child reports, or -1.
long child_faults(bool tune) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    setenv("GRPO_TEST_TUNE_MALLOC", tune ? "1" : "0", 1);
    execl("/proc/self/exe", "test_util", "--gtest_filter=MallocTuningChild.DISABLED_Pattern",
          "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto at = out.find("FAULTS ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos) return -1;
  return std::atol(out.c_str() + at + 7);
}

TEST(MallocTuning, FreedBlocksStayInTheHeap) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "not glibc: tune_malloc_for_cpu_tensors does nothing here";
#else
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("GLIBC_TUNABLES"))
    GTEST_SKIP() << "the environment sets glibc malloc tunables, which the function leaves alone";
  const long untuned = child_faults(false), tuned = child_faults(true);
  std::printf("page faults of rounds 3-4 (%ld pages each): glibc defaults %ld, tuned %ld\n", kRoundPages, untuned,
              tuned);
  ASSERT_GE(untuned, 0);
  ASSERT_GE(tuned, 0);
  EXPECT_GE(untuned, kRoundPages) << "glibc's defaults should return the blocks to the kernel between rounds";
  EXPECT_LT(tuned, kRoundPages / 20) << "tuned, the blocks should come back from the heap already mapped";
#endif
}

TEST(MallocTuning, LeavesTheUsersSettingsAlone) {
  ::setenv("MALLOC_MMAP_THRESHOLD_", "131072", 1);
  EXPECT_FALSE(tune_malloc_for_cpu_tensors());
  ::unsetenv("MALLOC_MMAP_THRESHOLD_");
}

}  // namespace
}  // namespace grpo::util
