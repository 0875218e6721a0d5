// fs::atomic_write: the file appears whole or not at all, and it never replaces what a path
// points to with a regular file (a symlinked file keeps its link; /dev/stdout stays a device).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace {

namespace sfs = std::filesystem;

std::string slurp(const sfs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

struct TempDir {
  sfs::path path = sfs::temp_directory_path() / ("grpo_fs_test_" + std::to_string(::getpid()));
  TempDir() { sfs::create_directories(path); }
  ~TempDir() { sfs::remove_all(path); }
};

TEST(AtomicWrite, WritesAndReplacesWithoutLeavingTempFiles) {
  TempDir d;
  auto f = d.path / "out.jsonl";
  grpo::fs::atomic_write(f.string(), "first\n");
  grpo::fs::atomic_write(f.string(), "second\n");
  EXPECT_EQ(slurp(f), "second\n");
  EXPECT_EQ(std::distance(sfs::directory_iterator(d.path), sfs::directory_iterator{}), 1) << "a temp file was left behind";
}

TEST(AtomicWrite, SymlinkToAFileKeepsTheLink) {
  TempDir d;
  auto target = d.path / "real.yaml", link = d.path / "link.yaml";
  std::ofstream(target) << "old\n";
  sfs::create_symlink(target, link);
  grpo::fs::atomic_write(link.string(), "new\n");
  EXPECT_TRUE(sfs::is_symlink(link)) << "the symlink was replaced by a regular file";
  EXPECT_EQ(slurp(target), "new\n");
}

TEST(AtomicWrite, DeviceIsWrittenThroughNotReplaced) {
  // A link to /dev/null stands for `--out /dev/stdout` (itself a link to /proc/self/fd/1): a
  // rename over it would leave a regular file where the link was.
  TempDir d;
  auto link = d.path / "null";
  sfs::create_symlink("/dev/null", link);
  grpo::fs::atomic_write(link.string(), "discarded\n");
  EXPECT_TRUE(sfs::is_symlink(link));
  EXPECT_TRUE(sfs::is_character_file("/dev/null"));
  EXPECT_THROW(grpo::fs::atomic_write(d.path.string(), "x"), grpo::InputError);
}

}  // namespace
