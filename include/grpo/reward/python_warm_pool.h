#pragma once
// Python interpreters started in the sandbox ahead of their programs, so that a call does not wait
// for one to start (the tool-call rollout's `python` tool, rollout/tools.h; docs/rollout.md).
//
// Each pooled interpreter is an ordinary sandbox run (fresh namespaces, read-only view, seccomp,
// rlimits, the unprivileged uid: Sandbox::run's isolation) whose program is a small bootstrap that
// blocks reading its stdin. run() writes the call's source there and closes it; the bootstrap
// writes it to main.py and runs it as `python3 -B main.py ARGS` would (same __main__, __file__,
// sys.argv, sys.path[0], tracebacks and exit status). An interpreter serves exactly one program
// and dies with its run, so no state passes between calls. Only the wall-clock limit is kept
// differently: the host counts it from the moment run() hands over the source (the interpreter's
// idle wait is not the program's time) and ends the run by killing its init, which takes the whole
// PID namespace down; the CPU-time limit (an rlimit) counts the interpreter's start, as a cold run's
// does. Without a PID namespace the pool does not pre-start (available() is false) and run() is
// Sandbox::run.
//
// No LibTorch here (reward layer).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpo/reward/sandbox.h"

namespace grpo::reward {

class PythonWarmPool {
 public:
  /// Interpreters of `sandbox`'s python (SandboxConfig::python) under its limits; `args` are
  /// argv[1..] of every program. `sandbox` must outlive the pool. Starts nothing until
  /// set_idle_target().
  PythonWarmPool(const Sandbox& sandbox, std::vector<std::string> args);
  /// Kills the idle interpreters and waits for them.
  ~PythonWarmPool();
  PythonWarmPool(const PythonWarmPool&) = delete;
  PythonWarmPool& operator=(const PythonWarmPool&) = delete;

  /// Whether interpreters can be pre-started here (the sandbox has a PID namespace).
  bool available() const;
  /// Keeps `n` idle interpreters started, in a background thread. A replacement for one taken
  /// starts once no call of run() is running (unless none is left idle or starting): an
  /// interpreter's start would take the CPU the call runs on. n = 0 kills the idle ones and
  /// returns once they and everything they started are gone.
  void set_idle_target(int n);

  /// Runs `source` as main.py in an idle interpreter, or with Sandbox::run (a cold start) when
  /// none is idle. Thread-safe. `prestarted` (optional) says which. The result is Sandbox::run's;
  /// its wall_s counts from the hand-over of the source.
  SandboxResult run(const std::string& source, bool* prestarted = nullptr);

  /// Interpreters started so far (idle or used; not the cold runs of run()).
  int64_t starts() const;
  /// Host pids of the idle interpreters' sandbox inits (tests kill them).
  std::vector<int> idle_init_pids() const;

  struct State;

 private:
  std::unique_ptr<State> st_;
};

}  // namespace grpo::reward
