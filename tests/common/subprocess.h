#pragma once
// Runs a shell command line for tests (the grpo binary, the venv python) and captures its exit
// code, stdout and stderr. Test-only helper: include as "common/subprocess.h".
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace grpo::testing {

struct CmdResult {
  int rc;           // exit code; 128 + signal when killed by a signal
  std::string out;  // stdout
  std::string err;  // stderr
};

inline CmdResult run_cmd(const std::string& cmdline) {
  static int counter = 0;
  auto err_file = std::filesystem::temp_directory_path() /
                  ("grpo_test_err_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::string cmd = cmdline + " 2>" + err_file.string();
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  if (p) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  }
  int status = p ? ::pclose(p) : -1;
  std::ifstream ef(err_file);
  std::string err((std::istreambuf_iterator<char>(ef)), {});
  std::filesystem::remove(err_file);
  int rc = status < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {rc, out, err};
}

/// Runs the grpo executable under test with the given arguments.
inline CmdResult run_grpo(const std::string& args) { return run_cmd(std::string(GRPO_BIN) + " " + args); }

}  // namespace grpo::testing
