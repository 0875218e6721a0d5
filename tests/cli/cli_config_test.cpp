// The grpo executable as a user runs it: exit codes, one-line errors, show -> check round trip.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>

#include "common/subprocess.h"

namespace {

using grpo::testing::CmdResult;
CmdResult run(const std::string& args) { return grpo::testing::run_grpo(args); }

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(CliConfig, ShowOutputRoundTripsThroughCheck) {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(GRPO_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    std::string cfg = entry.path().string();
    CmdResult shown = run("config show " + cfg + " grpo.beta=0.04 rollout.temperature=0.9");
    ASSERT_EQ(shown.rc, 0) << cfg << ": " << shown.err;
    EXPECT_NE(shown.out.find("beta: 0.04"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("temperature: 0.9"), std::string::npos);
    auto tmp = std::filesystem::temp_directory_path() / ("grpo_show_" + std::to_string(::getpid()) + "_" + entry.path().filename().string());
    std::ofstream(tmp) << shown.out;
    CmdResult checked = run("config check " + tmp.string());
    EXPECT_EQ(checked.rc, 0) << cfg << ": " << checked.err;
    CmdResult again = run("config show " + tmp.string());
    EXPECT_EQ(again.out, shown.out) << cfg << ": resolved config changed after a round trip";
    std::filesystem::remove(tmp);
  }
}

TEST(CliConfig, BadInputsExitTwoWithOneLine) {
  auto dir = std::filesystem::temp_directory_path() / ("grpo_cli_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "empty.yaml").close();
  std::ofstream(dir / "malformed.yaml") << "grpo: [1,\n";
  std::ofstream(dir / "range.yaml") << "grpo:\n  num_generations: 1\n";
  const std::pair<std::string, std::string> cases[] = {
      {"config check " + (dir / "missing.yaml").string(), "not found"},
      {"config check " + (dir / "empty.yaml").string(), "empty"},
      {"config check " + (dir / "malformed.yaml").string(), "malformed YAML"},
      {"config check " + dir.string(), "is a directory"},
      {"config check " + (dir / "range.yaml").string(), "range.yaml:2:20: grpo.num_generations must be an integer >= 2, got 1"},
  };
  for (const auto& [args, expect] : cases) {
    CmdResult r = run(args);
    EXPECT_EQ(r.rc, 2) << args << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": stderr should be one line, got:\n" << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << ": " << r.err;
  }
  std::filesystem::remove_all(dir);
}

TEST(CliConfig, VersionAndUsage) {
  CmdResult v = run("--version");
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("grpo "), std::string::npos);
  CmdResult u = run("no-such-command");
  EXPECT_EQ(u.rc, 2);
}

}  // namespace
