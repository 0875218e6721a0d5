#pragma once
// The code sandbox: runs an untrusted, model-written program (Python 3, or C++ compiled with g++)
// in a fresh process tree cut off from the host, under resource limits, and reports what happened.
//
// Each run gets new user, PID, network, mount, IPC and UTS namespaces (where the kernel allows), a
// read-only minimal view of the filesystem (/usr, /etc, a few /dev nodes, a private /proc) with a
// private size-limited tmpfs as its work directory, an empty environment, an unprivileged uid, a
// seccomp filter and rlimits. The namespace's init is our own code; when it exits (or is killed on
// timeout) the kernel kills every process of the run, so nothing outlives it. The security model,
// its limits and the fallbacks are described in docs/sandbox.md.
//
// No LibTorch here (reward layer).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/config/reward_config.h"

namespace grpo::reward {

/// What became of one run. Precedence when several apply: SANDBOX_ERROR, TIMEOUT, MEMORY_LIMIT,
/// OUTPUT_LIMIT, KILLED_BY_SIGNAL, FAILED, OK.
enum class SandboxStatus {
  OK,                // exited with code 0
  FAILED,            // exited with a non-zero code (includes a failed compilation)
  TIMEOUT,           // wall-clock limit (killed) or CPU-time limit (SIGXCPU / SIGKILL at the hard limit)
  MEMORY_LIMIT,      // hit the address-space limit (MemoryError, std::bad_alloc, ...; see classify_memory)
  OUTPUT_LIMIT,      // stdout or stderr went past max_output_bytes (the rest was drained and dropped)
  KILLED_BY_SIGNAL,  // terminated by another signal (SIGSEGV, SIGABRT, SIGXFSZ, ...)
  SANDBOX_ERROR      // the sandbox itself failed (could not start, host resources exhausted, no interpreter)
};

/// "ok", "failed", "timeout", "memory_limit", "output_limit", "killed_by_signal", "sandbox_error".
std::string_view status_name(SandboxStatus s);

/// One file placed in the run's work directory before the program starts (read-only to it).
struct SandboxFile {
  std::string name;  // plain file name: no '/', not "." or ".."
  std::string content;
};

/// A program to run.
struct SandboxRequest {
  config::CodeLanguage language = config::CodeLanguage::PYTHON;
  std::string source;               // main.py or main.cpp
  std::vector<SandboxFile> files;   // extra files in the work directory
  std::vector<std::string> args;    // argv[1..] of the program
};

/// The outcome of one run of a program (or of its compilation, stage == "compile").
struct SandboxResult {
  SandboxStatus status = SandboxStatus::SANDBOX_ERROR;
  std::string stage = "run";  // "compile" when a cpp program did not compile (then nothing ran)
  int exit_code = -1;         // when it exited; -1 when killed
  int signal = 0;             // the terminating signal, 0 when it exited
  std::string stdout_data;    // at most max_output_bytes
  std::string stderr_data;    // at most max_output_bytes
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  double wall_s = 0;          // seconds, from the start of the program to its end (or its kill)
  double cpu_s = 0;           // user + system seconds of the program and all its reaped descendants
  int64_t peak_memory_bytes = 0;  // largest resident set of any of its processes (ru_maxrss)
  std::string error;          // for SANDBOX_ERROR: what failed
};

/// Which isolation features this host granted (probed once per Sandbox).
struct SandboxIsolation {
  bool user_ns = true, pid_ns = true, net_ns = true, ipc_ns = true, uts_ns = true;
  bool mount_ns = true;  // required: without it there is no private filesystem view
  bool proc = true;      // a private /proc of the run's PID namespace
  bool seccomp = true;
  std::string describe() const;  // "user,pid,net,mount,ipc,uts,proc,seccomp" minus what is off
};

/// Runs programs. Thread-safe: run() may be called from many threads at once (see SandboxPool).
class SandboxSession;
class PythonWarmPool;

class Sandbox {
 public:
  /// Probes what the kernel allows (falling back feature by feature, each fallback logged once
  /// with log::warn_once), builds the seccomp filter and resolves the interpreter and compiler on
  /// the sandbox PATH (/usr/local/bin:/usr/bin:/bin). Throws grpo::InputError when even the
  /// minimal sandbox (a mount namespace) cannot be set up.
  explicit Sandbox(const config::SandboxConfig& cfg);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  /// Runs `req` once with `stdin_data` on its standard input. A cpp program is compiled first
  /// (under the compile_* limits); if that fails, the compile result is returned (stage
  /// "compile"). Never throws for anything the program does; sandbox failures are SANDBOX_ERROR.
  SandboxResult run(const SandboxRequest& req, const std::string& stdin_data = "") const;

  /// Runs `req` once per entry of `stdins`, all in one sandbox (one compilation for cpp; the runs
  /// share the work directory, one after another). Returns [stdins.size()] results; when the
  /// compilation fails every entry is the compile result. An empty `stdins` returns {}.
  std::vector<SandboxResult> run_each(const SandboxRequest& req, const std::vector<std::string>& stdins) const;

  const config::SandboxConfig& config() const { return cfg_; }
  const SandboxIsolation& isolation() const { return iso_; }
  /// Number of SANDBOX_ERROR results so far (the sandbox's own failures, for the trainer's logs).
  int64_t sandbox_errors() const;

  struct Impl;

 private:
  friend class SandboxSession;  // a long-lived program in this sandbox (sandbox_session.h)
  friend class PythonWarmPool;  // interpreters started ahead of their programs (python_warm_pool.h)
  config::SandboxConfig cfg_;
  SandboxIsolation iso_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo::reward
