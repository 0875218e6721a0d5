#pragma once
// Runs a shell command line for tests (the grpo binary, the venv python) and captures its exit
// code, stdout and stderr. Test-only helper: include as "common/subprocess.h".
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

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

/// Starts `grpo ARGS` (output discarded), SIGKILLs it once `file` exists or after `timeout`, and
/// returns its waitpid status (WIFSIGNALED: it was still running when killed).
inline int run_grpo_until(const std::string& args, const std::filesystem::path& file, std::chrono::seconds timeout) {
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = "exec " + std::string(GRPO_BIN) + " " + args + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(file) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace grpo::testing
