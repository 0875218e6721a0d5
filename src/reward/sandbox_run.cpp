// One run from the host's side (sandbox_run.h): the plan builder, the launcher, and run_stages(),
// which runs them and the pipe pump (sandbox_pump.cpp) in order. Between clone() and exec() nothing
// may allocate or take a lock (the host is multi-threaded), so everything the child needs is
// prepared beforehand in a Plan and the child only makes system calls.
#include "sandbox_run.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "grpo/util/error.h"

namespace grpo::reward::sandbox_detail {

const char* step_name(int s) {
  switch (s) {
    case STEP_FDS: return "closing inherited file descriptors";
    case STEP_SYNC: return "waiting for the uid map";
    case STEP_HOSTNAME: return "sethostname";
    case STEP_MOUNT_PRIVATE: return "making mounts private";
    case STEP_ROOT_TMPFS: return "mounting the root tmpfs";
    case STEP_MKDIR: return "mkdir in the new root";
    case STEP_SYMLINK: return "symlink in the new root";
    case STEP_BIND: return "bind-mounting a read-only path";
    case STEP_BIND_RO: return "remounting a bind read-only";
    case STEP_DEV: return "populating /dev";
    case STEP_PROC: return "mounting /proc";
    case STEP_WORK_TMPFS: return "mounting the work tmpfs";
    case STEP_WRITE_FILE: return "writing the program files";
    case STEP_PIVOT: return "pivot_root";
    case STEP_ROOT_RO: return "remounting the root read-only";
    case STEP_EXEC_PIPE: return "creating the exec pipe";
    case STEP_FORK: return "forking the program";
    case STEP_CHILD_FDS: return "setting up the program's stdio";
    case STEP_CHILD_RLIMIT: return "setrlimit";
    case STEP_CHILD_IDS: return "switching to the sandbox uid";
    case STEP_CHILD_NNP: return "PR_SET_NO_NEW_PRIVS";
    case STEP_CHILD_SECCOMP: return "loading the seccomp filter";
    case STEP_CHILD_EXEC: return "execve";
  }
  return "?";
}

void Fd::reset() {
  if (fd >= 0) close(fd);
  fd = -1;
}

namespace {

bool make_pipe(Fd& r, Fd& w) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return false;
  r = Fd(p[0]);
  w = Fd(p[1]);
  return true;
}

}  // namespace

bool RunPipes::create(const std::vector<StageSpec>& specs) {
  stages.clear();
  stages.resize(specs.size());
  bool ok = make_pipe(sync_r, sync_w) && make_pipe(status_r, status_w);
  for (size_t i = 0; ok && i < specs.size(); ++i) {
    ok = make_pipe(stages[i].out_r, stages[i].out_w) && make_pipe(stages[i].err_r, stages[i].err_w);
    if (ok && specs[i].stdin_data) ok = make_pipe(stages[i].in_r, stages[i].in_w);
  }
  if (!ok) return false;
  // Large pipe buffers: a program that floods its output is drained in few, large reads.
  for (auto& s : stages) {
    fcntl(s.out_r.fd, F_SETPIPE_SZ, 1 << 20);
    fcntl(s.err_r.fd, F_SETPIPE_SZ, 1 << 20);
  }
  return true;
}

void RunPipes::close_child_ends() {
  sync_r.reset();
  status_w.reset();
  for (auto& s : stages) {
    s.in_r.reset();
    s.out_w.reset();
    s.err_w.reset();
  }
}

InitProcess::~InitProcess() {
  if (reaped_ || pid <= 0) return;
  kill(pid, SIGKILL);
  reaper_.reap(pid, plan_);
}

void InitProcess::kill_and_reap() {
  if (reaped_) return;
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

void InitProcess::hand_to_reaper() {
  reaper_.reap(pid, plan_);
  reaped_ = true;
}

namespace {

// ---- the plan builder ----

// The run's filesystem view, environment and isolation: the same for every run of a Sandbox but
// for the files and the tmpfs sizes.
void plan_view(const RunHost& host, const config::SandboxConfig& cfg, const SandboxIsolation& iso,
               const std::vector<SandboxFile>& files, Plan& p) {
  p.iso.pid_ns = iso.pid_ns;
  p.iso.proc = iso.proc;
  p.iso.seccomp = iso.seccomp;
  p.iso.uts_ns = iso.uts_ns;
  p.bpf = &host.bpf;
  p.child_stack.resize(256 << 10);
  p.init_stack.resize(256 << 10);
  const std::string root = kNewRoot;
  for (const auto& [name, target] : host.top_symlinks) p.symlinks.emplace_back(target, root + "/" + name);
  for (const auto& name : host.top_binds) {
    p.mkdirs.push_back(root + "/" + name);
    p.binds.push_back({"/" + name, root + "/" + name, true});
  }
  p.dev_dir = root + "/dev";
  p.proc_dir = root + "/proc";
  p.work_dir = root + "/tmp";
  p.shm_dir = p.dev_dir + "/shm";
  p.mkdirs.push_back(p.dev_dir);
  p.mkdirs.push_back(p.proc_dir);
  p.mkdirs.push_back(p.work_dir);
  p.dev_nodes = {"null", "zero", "urandom"};
  p.root_opts = "size=256k,nr_inodes=256,mode=0755";
  p.dev_opts = "size=64k,nr_inodes=64,mode=0755";
  p.shm_opts = str("size=", std::max(1, cfg.max_file_size_mb), "m,nr_inodes=256,mode=1777");
  p.work_opts = str("size=", cfg.work_dir_mb, "m,nr_inodes=4096,mode=0755,uid=", kSandboxUid, ",gid=", kSandboxGid);
  for (const auto& f : files) p.files.push_back({p.work_dir + "/" + f.name, &f.content, {}});
  p.env_s = {str("PATH=", kSandboxPath), "LANG=C.UTF-8", "HOME=/tmp"};
  for (auto& e : p.env_s) p.env.push_back(e.data());
  p.env.push_back(nullptr);
}

// One stage: argv, resource limits and the child ends of its pipes.
StagePlan plan_stage(const StageSpec& sp, const RunPipes::Stage& pipes) {
  StagePlan s;
  s.path = sp.path;
  s.argv_s = sp.argv;
  for (auto& a : s.argv_s) s.argv.push_back(a.data());
  s.argv.push_back(nullptr);
  rlim_t cpu = static_cast<rlim_t>(std::max(1.0, std::ceil(sp.cpu_s)));
  auto lim = [](int64_t v) { return static_cast<rlim_t>(v); };
  s.limits = {{RLIMIT_AS, lim(sp.memory_bytes), lim(sp.memory_bytes)},
              {RLIMIT_CPU, cpu, cpu + 1},
              {RLIMIT_NPROC, lim(sp.max_processes), lim(sp.max_processes)},
              {RLIMIT_FSIZE, lim(sp.file_size_bytes), lim(sp.file_size_bytes)},
              {RLIMIT_NOFILE, lim(sp.open_files), lim(sp.open_files)},
              {RLIMIT_CORE, 0, 0},
              {RLIMIT_STACK, 8 << 20, 8 << 20},
              {RLIMIT_MEMLOCK, 64 << 10, 64 << 10},
              {RLIMIT_MSGQUEUE, 0, 0}};
  s.stdin_fd = sp.stdin_data ? pipes.in_r.fd : -1;
  s.stdout_fd = pipes.out_w.fd;
  s.stderr_fd = pipes.err_w.fd;
  s.stop_on_failure = sp.stop_on_failure;
  s.wall_ns = static_cast<int64_t>(std::min(sp.wall_s, 1e6) * 1e9);
  return s;
}

// Shared: when init is reaped in the background, the reaper keeps its memory alive until then.
std::shared_ptr<Plan> build_plan(const RunHost& host, const config::SandboxConfig& cfg, const SandboxIsolation& iso,
                                 const std::vector<SandboxFile>& files, const std::vector<StageSpec>& specs,
                                 const RunPipes& pipes) {
  auto plan = std::make_shared<Plan>();
  plan_view(host, cfg, iso, files, *plan);
  plan->sync_fd = pipes.sync_r.fd;
  plan->status_fd = pipes.status_w.fd;
  for (size_t i = 0; i < specs.size(); ++i) plan->stages.push_back(plan_stage(specs[i], pipes.stages[i]));
  return plan;
}

// ---- the launcher ----

// The run's init. Preferred: exec grpo-sandbox-init (a small static executable) right after
// clone(), so that the run's processes descend from a small address space. Forking them from the
// trainer copied its page tables on every run (the largest single cost of a run in perf), and an
// exec reports the address space it replaces as part of the new program's ru_maxrss
// (peak_memory_bytes would include the trainer's memory). Until that exec the clone shares this
// process's memory (CLONE_VM) and runs exec_init_entry on its own stack, making system calls only;
// the Plan outlives it (InitProcess). It also shares this thread's TLS, so a failed call's errno
// there may be overwritten by this thread: only the errno reported for a failed exec could be
// wrong. Fallback without the executable: init runs as a copy of this process (fork semantics, no
// shared memory).

// What the clone needs to exec grpo-sandbox-init (prepared before clone()).
struct ExecInit {
  const char* path;
  const char* const* argv;
  int sync_fd;      // the host writes 'g' once the uid maps are in place
  int err_fd;       // close-on-exec pipe: execve's errno on failure
  const int* keep;  // descriptors grpo-sandbox-init needs: close-on-exec cleared
  int n_keep;
};

// Runs in a CLONE_VM child: system calls only. Execs only once the uid maps are written: exec as
// an unmapped uid would drop the capabilities that init needs for its mounts.
int exec_init_entry(void* arg) {
  const auto* x = static_cast<const ExecInit*>(arg);
  char go = 0;
  ssize_t r;
  do r = read(x->sync_fd, &go, 1);
  while (r < 0 && errno == EINTR);
  if (r != 1 || go != 'g') _exit(1);
  for (int i = 0; i < x->n_keep; ++i) fcntl(x->keep[i], F_SETFD, 0);
  static char* const kNoEnv[] = {nullptr};
  execve(x->path, const_cast<char* const*>(x->argv), kNoEnv);
  int e = errno;
  (void)!write(x->err_fd, &e, sizeof e);
  _exit(127);
}

// Everything the exec'ing clone reads from this process's memory, and the plan's memfd. The clone
// reads it only after the host's 'g', and the host waits for its exec (or its end) before this goes.
struct ExecLaunch {
  Fd plan_fd, err_r, err_w;
  std::string plan_fd_arg;
  const char* argv[3] = {"grpo-sandbox-init", nullptr, nullptr};
  std::vector<int> keep_fds;
  ExecInit ex{};
};

// Hands the plan to grpo-sandbox-init through a memfd and fills `x`; false (errno set) on failure.
bool prepare_exec(const std::string& init_exe, const Plan& p, ExecLaunch& x) {
  const std::string bytes = encode_plan(p);
  x.plan_fd = Fd(memfd_create("grpo-sandbox-plan", MFD_CLOEXEC));
  bool ok = x.plan_fd.fd >= 0 && make_pipe(x.err_r, x.err_w);
  for (size_t at = 0; ok && at < bytes.size();) {
    ssize_t w = write(x.plan_fd.fd, bytes.data() + at, bytes.size() - at);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    at += ok ? static_cast<size_t>(w) : 0;
  }
  if (!ok) return false;
  x.plan_fd_arg = std::to_string(x.plan_fd.fd);
  x.argv[1] = x.plan_fd_arg.c_str();
  x.keep_fds.push_back(x.plan_fd.fd);
  x.keep_fds.push_back(p.status_fd);
  for (const auto& s : p.stages)
    for (int fd : {s.stdin_fd, s.stdout_fd, s.stderr_fd})
      if (fd >= 0) x.keep_fds.push_back(fd);
  x.ex = ExecInit{init_exe.c_str(), x.argv, p.sync_fd, x.err_w.fd, x.keep_fds.data(), static_cast<int>(x.keep_fds.size())};
  return true;
}

int clone_flags(const SandboxIsolation& iso) {
  int f = CLONE_NEWNS;
  if (iso.user_ns) f |= CLONE_NEWUSER;
  if (iso.pid_ns) f |= CLONE_NEWPID;
  if (iso.net_ns) f |= CLONE_NEWNET;
  if (iso.ipc_ns) f |= CLONE_NEWIPC;
  if (iso.uts_ns) f |= CLONE_NEWUTS;
  return f;
}

// clone()s init into its namespaces and sets init.pid (-1: clone failed, errno set). `exec` is
// null for the fork fallback, whose child becomes init here and never returns. Throws when this
// thread cannot return to its own network namespace.
void clone_init(RunHost& host, const SandboxIsolation& iso, Plan& p, ExecLaunch* exec, InitProcess& init) {
  int flags = clone_flags(iso);
  // A ready network namespace: this thread enters it for the clone() and returns right after.
  Fd ready_net, home_net;
  if (iso.net_ns) ready_net = Fd(host.netns.take());
  if (ready_net.fd >= 0) {
    home_net = Fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (home_net.fd >= 0 && setns(ready_net.fd, CLONE_NEWNET) == 0) flags &= ~CLONE_NEWNET;
  }
  char* init_top = p.init_stack.data() + p.init_stack.size();
  init_top = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(init_top) & ~uintptr_t(63));
  pid_t pid = exec ? clone(exec_init_entry, init_top, flags | CLONE_VM | SIGCHLD, &exec->ex)
                   : static_cast<pid_t>(syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
  if (!exec && pid == 0) init_main(p, true);  // never returns
  // From here any exit that has not reaped init (an exception) kills it and leaves the Plan to the
  // reaper: init must never run on freed memory.
  init.pid = pid;
  if (!(flags & CLONE_NEWNET) && iso.net_ns && setns(home_net.fd, CLONE_NEWNET) != 0)
    throw InternalError(str("sandbox: could not return the worker thread to its network namespace: ", std::strerror(errno)));
}

bool write_proc_file(pid_t pid, const char* file, const std::string& data) {
  std::string path = str("/proc/", pid, "/", file);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  return ok;
}

// Lets the cloned init go: its uid maps, then 'g' on the sync pipe, then (exec path) waits until
// it has exec'd. false with report.error set (init reaped) on failure.
bool start_init(const SandboxIsolation& iso, const std::string& init_exe, RunPipes& pipes, ExecLaunch* exec,
                InitProcess& init, RunReport& report) {
  if (iso.user_ns) {
    const std::string map = str("0 0 1\n", kSandboxUid, " ", kSandboxUid, " 1\n");
    const std::string gmap = str("0 0 1\n", kSandboxGid, " ", kSandboxGid, " 1\n");
    if (!write_proc_file(init.pid, "uid_map", map) || !write_proc_file(init.pid, "gid_map", gmap)) {
      report.error = str("writing the user namespace id maps failed: ", std::strerror(errno));
      report.setup_step = -1;
      init.kill_and_reap();
      return false;
    }
  }
  if (write(pipes.sync_w.fd, "g", 1) != 1) {
    report.error = str("could not start the sandbox init: ", std::strerror(errno));
    init.kill_and_reap();
    return false;
  }
  pipes.sync_w.reset();
  if (!exec) return true;
  // EOF: the exec happened (the pipe is close-on-exec) or the clone died before it (the status
  // pipe then reports that); an int: execve failed with that errno.
  exec->err_w.reset();
  int e = 0;
  ssize_t n;
  do n = read(exec->err_r.fd, &e, sizeof e);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof e)) {
    report.error = str("could not exec the sandbox init ", init_exe, ": ", std::strerror(e));
    report.setup_step = kSetupExecInit;
    init.kill_and_reap();
    return false;
  }
  return true;
}

// The launcher: prepares the exec, clones init and lets it go. false with report.error set on
// failure. `exec` must outlive init's use of it (see ExecLaunch).
bool launch_init(RunHost& host, const SandboxIsolation& iso, Plan& p, RunPipes& pipes, ExecLaunch& exec,
                 InitProcess& init, RunReport& report) {
  ExecLaunch* x = host.init_exe.empty() ? nullptr : &exec;
  if (x && !prepare_exec(host.init_exe, p, *x)) {
    report.error = str("could not hand the run's plan to grpo-sandbox-init: ", std::strerror(errno));
    return false;
  }
  clone_init(host, iso, p, x, init);
  if (init.pid < 0) {
    report.error = str("clone failed: ", std::strerror(errno));
    report.setup_errno = errno;
    return false;
  }
  pipes.close_child_ends();  // host side from here on
  return start_init(iso, host.init_exe, pipes, x, init, report);
}

// Stages that never started because the host stopped the run share the stopping stage's fate.
void mark_skipped_after_stop(std::vector<StageReport>& stages) {
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageReport& so = stages[i];
    if (!so.timed_out && !so.flooded) continue;
    for (size_t j = i + 1; j < stages.size(); ++j)
      if (!stages[j].started) {
        stages[j].skipped = true;
        stages[j].skipped_because = so.timed_out ? SandboxStatus::TIMEOUT : SandboxStatus::OUTPUT_LIMIT;
      }
    break;
  }
}

}  // namespace

RunReport run_stages(RunHost& host, const config::SandboxConfig& cfg, const SandboxIsolation& iso,
                     const std::vector<SandboxFile>& files, const std::vector<StageSpec>& specs) {
  RunReport report;
  report.stages.resize(specs.size());
  SigpipeGuard sigpipe_guard;
  RunPipes pipes;
  if (!pipes.create(specs)) {
    report.error = str("could not create pipes: ", std::strerror(errno));
    return report;
  }
  std::shared_ptr<Plan> plan = build_plan(host, cfg, iso, files, specs, pipes);
  // Declared before `init`: destroyed after it, so the clone's memory outlives any use of it.
  ExecLaunch exec;
  InitProcess init(host.reaper, plan);
  if (!launch_init(host, iso, *plan, pipes, exec, init, report)) return report;
  pump_pipes(report, specs, pipes, init, cfg.max_output_bytes);
  mark_skipped_after_stop(report.stages);
  if (!init.reaped()) init.hand_to_reaper();
  return report;
}

std::string start_live_run(RunHost& host, const config::SandboxConfig& cfg, const SandboxIsolation& iso,
                           const std::vector<SandboxFile>& files, const StageSpec& spec, LiveRun& out) {
  SigpipeGuard sigpipe_guard;
  static const std::string kLive;  // non-null stdin_data: RunPipes makes the stdin pipe
  std::vector<StageSpec> specs{spec};
  specs[0].stdin_data = &kLive;
  if (!out.pipes.create(specs)) return str("could not create pipes: ", std::strerror(errno));
  out.plan = build_plan(host, cfg, iso, files, specs, out.pipes);
  // The exec (or the fork) has happened once launch_init returns true: `exec` may go then.
  ExecLaunch exec;
  out.init = std::make_unique<InitProcess>(host.reaper, out.plan);
  RunReport report;
  if (!launch_init(host, iso, *out.plan, out.pipes, exec, *out.init, report)) {
    out.init.reset();
    return report.error.empty() ? std::string("could not start the sandbox") : report.error;
  }
  return "";
}

SigpipeGuard::SigpipeGuard() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, &old_);
}

SigpipeGuard::~SigpipeGuard() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  timespec zero{0, 0};
  while (sigtimedwait(&s, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace grpo::reward::sandbox_detail
