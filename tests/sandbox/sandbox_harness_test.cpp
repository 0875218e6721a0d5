// The assert-test harness is a Python file, src/reward/sandbox_harness.py, compiled into the
// library at build time (src/reward/embed_file.cmake). Here: the file is valid Python and the
// library carries exactly its bytes. That the embedded harness still works in the sandbox is
// covered by SandboxAdversarial.HarnessRejectsEarlyExitPatchesAndForgedVerdicts and
// CodeReward.ScoresAssertAndIoTestsEndToEnd (and HumanEval.CanonicalSolutionsScoreOneWrongOnesLess
// where its data is fetched).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "grpo/reward/sandbox_harness.h"

namespace grpo::test {
namespace {

namespace fs = std::filesystem;

const std::string kHarnessPy = std::string(GRPO_SOURCE_DIR) + "/src/reward/sandbox_harness.py";

// `python3 -W error -m py_compile <path>` with the interpreter the sandbox runs (its PATH), the
// bytecode cache under `cache_dir` instead of beside the source, warnings (invalid escapes, ...)
// as errors.
grpo::testing::CmdResult py_compile(const std::string& path, const fs::path& cache_dir) {
  return grpo::testing::run_cmd("env PATH=/usr/local/bin:/usr/bin:/bin PYTHONPYCACHEPREFIX='" + cache_dir.string() +
                                "' python3 -W error -m py_compile '" + path + "'");
}

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("grpo_sandbox_harness_test_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
};

TEST(SandboxHarness, EmbeddedTextIsTheFilesBytes) {
  std::ifstream f(kHarnessPy, std::ios::binary);
  ASSERT_TRUE(f) << kHarnessPy;
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u) << kHarnessPy;
  const std::string& embedded = reward::python_assert_harness();
  ASSERT_EQ(embedded.size(), bytes.size());
  EXPECT_TRUE(embedded == bytes) << "rebuild: the library's harness differs from " << kHarnessPy;
}

TEST(SandboxHarness, FileCompilesAsPython) {
  TempDir tmp;
  auto ok = py_compile(kHarnessPy, tmp.dir);
  EXPECT_EQ(ok.rc, 0) << ok.err;
  // The check can fail: a syntax error, and a warning (an invalid escape sequence), are caught.
  const fs::path bad = tmp.dir / "bad.py";
  std::ofstream(bad) << "def f(:\n    pass\n";
  EXPECT_NE(py_compile(bad.string(), tmp.dir).rc, 0);
  const fs::path warns = tmp.dir / "warns.py";
  std::ofstream(warns) << "x = '\\d'\n";
  EXPECT_NE(py_compile(warns.string(), tmp.dir).rc, 0);
}

}  // namespace
}  // namespace grpo::test
