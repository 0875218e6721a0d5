// `grpo sandbox run`: the JSON it prints and its exit codes on bad input.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace grpo::test {
namespace {

namespace fs = std::filesystem;

struct Cmd {
  int code = -1;
  std::string out;
};

Cmd run(const std::string& args) {
  Cmd c;
  std::string cmd = std::string(GRPO_BIN) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return c;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) c.out.append(buf, n);
  int st = pclose(p);
  c.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("grpo_sandbox_test_cli_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(dir / name) << content;
    return (dir / name).string();
  }
};

TEST(SandboxCli, RunsPythonAndCppAndPrintsJson) {
  TempDir t;
  std::string py = t.write("p.py", "import sys\nprint(sys.stdin.read().upper(), end='')\nsys.exit(4)\n");
  std::string in = t.write("in.txt", "hello");
  Cmd c = run("sandbox run " + py + " --stdin " + in);
  ASSERT_EQ(c.code, 0) << c.out;
  auto j = nlohmann::json::parse(c.out);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["exit_code"], 4);
  EXPECT_EQ(j["stdout"], "HELLO");
  EXPECT_EQ(j["stdout_truncated"], false);
  EXPECT_TRUE(j.contains("wall_s") && j.contains("cpu_s") && j.contains("peak_memory_bytes") && j.contains("signal"));
  EXPECT_NE(j["isolation"].get<std::string>().find("mount"), std::string::npos);  // the one required feature

  std::string cpp = t.write("p.cpp", "#include <cstdio>\nint main(){ std::puts(\"hi from c++\"); }\n");
  Cmd c2 = run("sandbox run " + cpp);
  ASSERT_EQ(c2.code, 0) << c2.out;
  auto j2 = nlohmann::json::parse(c2.out);
  EXPECT_EQ(j2["status"], "ok");
  EXPECT_EQ(j2["stdout"], "hi from c++\n");
}

TEST(SandboxCli, BadInputExitsTwo) {
  TempDir t;
  std::string py = t.write("p.py", "pass\n");
  EXPECT_EQ(run("sandbox run " + py + " --lang rust").code, 2);
  EXPECT_EQ(run("sandbox run " + (t.dir / "missing.py").string()).code, 2);
}

}  // namespace
}  // namespace grpo::test
