#pragma once
// Internal to the sandbox (not a public header): one run, from the host's side. A run is a list of
// stages (compile, run, run, ...) carried out by one init process in fresh namespaces:
//   plan builder  (sandbox_run.cpp)  what init needs, prepared before clone(): the filesystem view,
//                                    the stages' argv, limits and pipe ends (a Plan, sandbox_init.h);
//   launcher      (sandbox_run.cpp)  clone()s init, writes its uid maps and lets it go;
//   pipe pump     (sandbox_pump.cpp) feeds the stages' stdin, drains their stdout/stderr and reads
//                                    init's status records until the run has ended, enforcing the
//                                    host-side limits (the wall-clock backstop, output flooding).
// run_stages() runs the three in that order and returns what was observed; Sandbox (sandbox.cpp)
// turns it into SandboxResults.
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpo/reward/sandbox.h"
#include "sandbox_init.h"
#include "sandbox_workers.h"

namespace grpo::reward::sandbox_detail {

constexpr const char* kSandboxPath = "/usr/local/bin:/usr/bin:/bin";
constexpr int kSetupExecInit = -2;  // RunReport::setup_step when grpo-sandbox-init could not be exec'd

/// What a setup step (Step, sandbox_init.h) does, for messages.
const char* step_name(int step);

/// One stage as the host asks for it.
struct StageSpec {
  std::string path;
  std::vector<std::string> argv;
  const std::string* stdin_data = nullptr;  // nullptr: /dev/null
  double wall_s = 1, cpu_s = 1;
  int64_t memory_bytes = 0;
  int max_processes = 1;
  int64_t file_size_bytes = 0;
  int open_files = 16;
  bool stop_on_failure = false;
};

/// What the host learned of one stage: init's records (start, end, wait status, usage) and the
/// output drained from its pipes. Not to be confused with grpo::train::StageOutcome (a training
/// stage's end).
struct StageReport {
  bool started = false, ended = false, timed_out = false;
  int wait_status = 0;
  double wall_s = 0, cpu_s = 0;
  int64_t maxrss_kb = 0;
  int64_t start_ns = 0;
  std::string out, err;
  bool out_trunc = false, err_trunc = false;
  int64_t dropped = 0;   // bytes drained past the cap
  bool flooded = false;  // stopped for flooding its output
  bool skipped = false;  // never ran: an earlier stage of the run was stopped by the host
  SandboxStatus skipped_because = SandboxStatus::OK;
  int child_error_step = 0, child_error_errno = 0;
};

/// A whole run: one report per stage, or a setup failure.
struct RunReport {
  std::vector<StageReport> stages;
  std::string error;  // setup failure, "" when none
  int setup_step = 0, setup_errno = 0;
};

/// What every run of one Sandbox uses on the host side; fixed by the Sandbox's constructor except
/// for the two workers, which lock for themselves (runs go on concurrently from several threads).
struct RunHost {
  std::vector<uint8_t> bpf;  // the seccomp filter
  std::string init_exe;      // grpo-sandbox-init, "" when missing: init runs as a fork of this process
  std::vector<std::pair<std::string, std::string>> top_symlinks;  // name -> target ("bin" -> "usr/bin")
  std::vector<std::string> top_binds;                             // "usr", "etc", ...
  NetnsStock netns;
  Reaper reaper;
};

/// The executable `name` as the sandbox sees it: a name is looked up on kSandboxPath, an absolute
/// path must lie under /usr/ or /bin/. "" when not found there.
std::string find_on_sandbox_path(const std::string& name);

/// Runs `specs` one after another in one sandbox holding `files`. Setup failures come back in
/// RunReport::error; the call throws only when this thread could not return to its own network
/// namespace.
RunReport run_stages(RunHost& host, const config::SandboxConfig& cfg, const SandboxIsolation& iso,
                     const std::vector<SandboxFile>& files, const std::vector<StageSpec>& specs);

// ---- shared by the launcher and the pipe pump ----

/// An owned file descriptor.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = o.fd;
    o.fd = -1;
    return *this;
  }
  ~Fd() { reset(); }
  void reset();
};

/// The run's pipes: sync (host -> init), status (init -> host), and per stage stdin (only when
/// the stage has input), stdout and stderr. `_r` is the read end, `_w` the write end.
struct RunPipes {
  struct Stage {
    Fd in_r, in_w, out_r, out_w, err_r, err_w;
  };
  Fd sync_r, sync_w, status_r, status_w;
  std::vector<Stage> stages;

  /// false (errno set) when a pipe could not be made.
  bool create(const std::vector<StageSpec>& specs);
  /// After clone(): the ends init inherited are closed here, so that EOF means the writer is gone.
  void close_child_ends();
};

/// A started init and the duty to reap it: on this thread (kill_and_reap) or by the Reaper, which
/// keeps the run's Plan alive until then (a CLONE_VM init runs in the Plan's memory until it
/// execs). Destroyed unreaped (an exception): init is killed and handed to the Reaper.
class InitProcess {
 public:
  InitProcess(Reaper& reaper, std::shared_ptr<const Plan> plan) : reaper_(reaper), plan_(std::move(plan)) {}
  InitProcess(const InitProcess&) = delete;
  InitProcess& operator=(const InitProcess&) = delete;
  ~InitProcess();

  pid_t pid = -1;
  bool reaped() const { return reaped_; }
  /// SIGKILL and wait here; the run's processes die with init (PID namespace, or PDEATHSIG).
  void kill_and_reap();
  /// Everything of the run has been reported; init is exiting (the kernel is tearing down its
  /// namespaces, which can wait on RCU grace periods). Reap it off this thread's path.
  void hand_to_reaper();

 private:
  Reaper& reaper_;
  std::shared_ptr<const Plan> plan_;
  bool reaped_ = false;
};

/// The pipe pump: runs until init and every output pipe are closed (or the run was stopped),
/// filling `report`. `max_output_bytes` caps each stage's stdout and stderr. `host_deadline_ns`
/// (now_ns() clock; 0: none) is a wall-clock limit the host enforces itself by killing init: for a
/// pre-started run (python_warm_pool.h), whose program started before its limit's clock did; it
/// takes the program down only with a PID namespace.
void pump_pipes(RunReport& report, const std::vector<StageSpec>& specs, RunPipes& pipes, InitProcess& init,
                int max_output_bytes, int64_t host_deadline_ns = 0);

/// A stage's report as a SandboxResult (status precedence as in sandbox.h).
SandboxResult to_result(const StageReport& so, const StageSpec& spec, const char* stage_name);

/// A run of one stage that the host talks to itself while it runs (a persistent worker,
/// sandbox_session.h): the plan builder's and the launcher's work, without the pump. The stage's
/// stdin, stdout and stderr and init's status pipe stay open in `pipes` (host ends).
struct LiveRun {
  RunPipes pipes;
  std::shared_ptr<Plan> plan;
  std::unique_ptr<InitProcess> init;  // destroyed: the run is killed and reaped in the background
};

/// Blocks SIGPIPE in this thread while we write to pipes whose reader may be gone, and swallows
/// the pending one afterwards: a library must not change the process's signal dispositions.
struct SigpipeGuard {
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_{};
};

/// Starts `spec` (its stdin_data is ignored: the stdin pipe is always made) in a fresh sandbox
/// holding `files`. Returns "" on success, else what failed (nothing is left running).
std::string start_live_run(RunHost& host, const config::SandboxConfig& cfg, const SandboxIsolation& iso,
                           const std::vector<SandboxFile>& files, const StageSpec& spec, LiveRun& out);

}  // namespace grpo::reward::sandbox_detail

namespace grpo::reward {

/// What a Sandbox holds beyond its config (shared by sandbox.cpp and sandbox_session.cpp).
struct Sandbox::Impl {
  sandbox_detail::RunHost host;  // what runs share: the view, the seccomp filter, grpo-sandbox-init, the workers
  std::string python_path, cxx_path;
  std::atomic<int64_t> errors{0};
};

}  // namespace grpo::reward
