// util/malloc_tuning.h: after tune_malloc_for_cpu_tensors(), a 48 MiB block (above glibc's
// default mmap ceiling of 32 MiB, so mmap'd and unmapped on every malloc/free by default) is
// served from the heap and reused: touching it again costs no page faults (getrusage counts
// them). The user's own MALLOC_* settings are left alone.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "grpo/util/malloc_tuning.h"

namespace grpo::util {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Page faults of one malloc + touch of every page + free of `bytes`.
long faults_of_one_block(size_t bytes) {
  const long f0 = minor_faults();
  auto* p = static_cast<char*>(std::malloc(bytes));
  EXPECT_NE(p, nullptr);
  for (size_t i = 0; i < bytes; i += 4096) p[i] = static_cast<char>(i);
  asm volatile("" : : "r"(p) : "memory");
  std::free(p);
  return minor_faults() - f0;
}

TEST(MallocTuning, LargeBlocksAreReusedWithoutPageFaults) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "not glibc: tune_malloc_for_cpu_tensors does nothing here";
#else
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("GLIBC_TUNABLES"))
    GTEST_SKIP() << "the environment sets glibc malloc tunables: the function leaves them (checked below otherwise)";
  // The user's setting wins: with MALLOC_MMAP_THRESHOLD_ set it changes nothing.
  ::setenv("MALLOC_MMAP_THRESHOLD_", "131072", 1);
  EXPECT_FALSE(tune_malloc_for_cpu_tensors());
  ::unsetenv("MALLOC_MMAP_THRESHOLD_");

  const size_t bytes = size_t{48} << 20;  // 12,288 pages
  const long pages = static_cast<long>(bytes / 4096);
  const long untuned = faults_of_one_block(bytes);  // mmap'd: every page faults
  EXPECT_GE(untuned, pages * 9 / 10) << "glibc's default should map this block afresh";
  ASSERT_TRUE(tune_malloc_for_cpu_tensors());
  faults_of_one_block(bytes);  // first use of the heap block
  const long again = faults_of_one_block(bytes);
  EXPECT_LT(again, pages / 100) << "the block should come back from the heap, already mapped";
#endif
}

}  // namespace
}  // namespace grpo::util
