// The sandbox's process machinery. The host thread clone()s an init process into fresh namespaces;
// init builds the filesystem view, then runs the stages (compile, run, run, ...) one after another
// as unprivileged children and reports each stage's end over a status pipe. Between clone() and
// exec() nothing may allocate or take a lock (the host is multi-threaded), so everything the child
// needs is prepared beforehand in a Plan and the child only makes system calls.
#include "grpo/reward/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "grpo/reward/sandbox_seccomp.h"
#include "sandbox_init.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::reward {

using namespace sandbox_detail;

std::string_view status_name(SandboxStatus s) {
  switch (s) {
    case SandboxStatus::OK: return "ok";
    case SandboxStatus::FAILED: return "failed";
    case SandboxStatus::TIMEOUT: return "timeout";
    case SandboxStatus::MEMORY_LIMIT: return "memory_limit";
    case SandboxStatus::OUTPUT_LIMIT: return "output_limit";
    case SandboxStatus::KILLED_BY_SIGNAL: return "killed_by_signal";
    case SandboxStatus::SANDBOX_ERROR: return "sandbox_error";
  }
  return "?";
}

std::string SandboxIsolation::describe() const {
  std::string s;
  auto add = [&](bool on, const char* n) {
    if (!on) return;
    if (!s.empty()) s += ",";
    s += n;
  };
  add(user_ns, "user");
  add(pid_ns, "pid");
  add(net_ns, "net");
  add(mount_ns, "mount");
  add(ipc_ns, "ipc");
  add(uts_ns, "uts");
  add(proc, "proc");
  add(seccomp, "seccomp");
  return s;
}

namespace {

constexpr const char* kSandboxPath = "/usr/local/bin:/usr/bin:/bin";
constexpr int64_t kFloodBytes = 64LL << 20;  // drained past the cap before a run is stopped

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

// Plan, Record, init_main: sandbox_init.h / sandbox_init.cpp.

// What the clone needs to exec grpo-sandbox-init (prepared before clone(); see run_stages).
struct ExecInit {
  const char* path;
  const char* const* argv;
  int sync_fd;      // the host writes 'g' once the uid maps are in place
  int err_fd;       // close-on-exec pipe: execve's errno on failure
  const int* keep;  // descriptors grpo-sandbox-init needs: close-on-exec cleared
  int n_keep;
};
constexpr int kSetupExecInit = -2;  // Raw::setup_step when grpo-sandbox-init could not be exec'd

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

// grpo-sandbox-init: $GRPO_SANDBOX_INIT (empty: none, init runs as a fork), else beside the
// running executable, else at its build-tree path. "" when none is executable.
std::string find_init_exe() {
  auto usable = [](const std::string& p) { return !p.empty() && access(p.c_str(), X_OK) == 0; };
  if (const char* env = std::getenv("GRPO_SANDBOX_INIT")) return usable(env) ? std::string(env) : std::string();
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    std::string self(buf, static_cast<size_t>(n));
    std::string beside = self.substr(0, self.rfind('/') + 1) + "grpo-sandbox-init";
    if (usable(beside)) return beside;
  }
#ifdef GRPO_SANDBOX_INIT_BUILD_PATH
  if (usable(GRPO_SANDBOX_INIT_BUILD_PATH)) return GRPO_SANDBOX_INIT_BUILD_PATH;
#endif
  return "";
}

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
  void reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

bool make_pipe(Fd& r, Fd& w) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return false;
  r = Fd(p[0]);
  w = Fd(p[1]);
  return true;
}

std::string find_on_sandbox_path(const std::string& name) {
  auto usable = [](const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
  };
  if (name.find('/') != std::string::npos) {
    // Absolute paths must lie inside what the sandbox sees.
    bool visible = name.rfind("/usr/", 0) == 0 || name.rfind("/bin/", 0) == 0;
    return visible && usable(name) ? name : "";
  }
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    std::string p = std::string(dir) + "/" + name;
    if (usable(p)) return p;
  }
  return "";
}

bool write_proc_file(pid_t pid, const char* file, const std::string& data) {
  std::string path = str("/proc/", pid, "/", file);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  return ok;
}

struct StageOutcome {
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

bool mentions_memory_exhaustion(const std::string& err) {
  for (const char* needle : {"MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory",
                             "memory exhausted"})
    if (err.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

struct Sandbox::Impl {
  std::vector<uint8_t> bpf;
  std::string init_exe;  // grpo-sandbox-init, "" when missing: init runs as a fork of this process
  std::string python_path, cxx_path;
  std::vector<std::pair<std::string, std::string>> top_symlinks;  // name -> target ("bin" -> "usr/bin")
  std::vector<std::string> top_binds;                             // "usr", "etc", ...
  std::atomic<int64_t> errors{0};

  // Fresh, empty network namespaces made ahead of time by a background thread: creating one
  // waits milliseconds in the kernel, which would otherwise sit on the path of every run. Each is
  // used by exactly one run.
  struct NetnsStock {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<int> fds;
    bool stop = false;
    std::thread th;
    void start(size_t target) {
      th = std::thread([this, target] {
        for (;;) {
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return stop || fds.size() < target; });
            if (stop) return;
          }
          // unshare() moves only this thread into the new namespace; it never leaves it.
          if (unshare(CLONE_NEWNET) != 0) return;
          int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
          if (fd < 0) return;
          std::lock_guard<std::mutex> lock(mu);
          fds.push_back(fd);
        }
      });
    }
    int take() {
      std::lock_guard<std::mutex> lock(mu);
      if (fds.empty()) return -1;
      int fd = fds.front();
      fds.pop_front();
      cv.notify_one();
      return fd;
    }
    ~NetnsStock() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
      }
      cv.notify_all();
      if (th.joinable()) th.join();
      for (int fd : fds) close(fd);
    }
  };
  mutable NetnsStock netns;

  // Reaps finished inits in the background, so that a run returns as soon as it has reported.
  struct Reaper {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<pid_t, std::shared_ptr<const void>>> pids;
    bool stop = false;
    std::thread th;
    // `keep` (the run's Plan, whose memory init runs in) is released only once init is reaped.
    void reap(pid_t pid, std::shared_ptr<const void> keep) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!th.joinable()) th = std::thread([this] { loop(); });
        pids.emplace_back(pid, std::move(keep));
      }
      cv.notify_one();
    }
    void loop() {
      for (;;) {
        std::pair<pid_t, std::shared_ptr<const void>> item;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || !pids.empty(); });
          if (pids.empty()) return;  // stop requested and nothing left
          item = std::move(pids.front());
          pids.pop_front();
        }
        while (waitpid(item.first, nullptr, 0) < 0 && errno == EINTR) {
        }
        item.second.reset();
      }
    }
    ~Reaper() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
      }
      cv.notify_all();
      if (th.joinable()) th.join();
    }
  };
  mutable Reaper reaper;

  struct Raw {
    std::vector<StageOutcome> stages;
    std::string error;  // setup failure, "" when none
    int setup_step = 0, setup_errno = 0;
  };

  Raw run_stages(const config::SandboxConfig& cfg, const SandboxIsolation& iso, const std::vector<SandboxFile>& files,
                 const std::vector<StageSpec>& specs) const;
};

namespace {

int clone_flags(const SandboxIsolation& iso) {
  int f = CLONE_NEWNS;
  if (iso.user_ns) f |= CLONE_NEWUSER;
  if (iso.pid_ns) f |= CLONE_NEWPID;
  if (iso.net_ns) f |= CLONE_NEWNET;
  if (iso.ipc_ns) f |= CLONE_NEWIPC;
  if (iso.uts_ns) f |= CLONE_NEWUTS;
  return f;
}

// Blocks SIGPIPE in this thread while we write to pipes whose reader may be gone, and swallows
// the pending one afterwards: a library must not change the process's signal dispositions.
struct SigpipeGuard {
  sigset_t old{};
  SigpipeGuard() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &old);
  }
  ~SigpipeGuard() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&s, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
};

}  // namespace

Sandbox::Impl::Raw Sandbox::Impl::run_stages(const config::SandboxConfig& cfg, const SandboxIsolation& iso,
                                              const std::vector<SandboxFile>& files,
                                              const std::vector<StageSpec>& specs) const {
  Raw raw;
  raw.stages.resize(specs.size());
  SigpipeGuard sigpipe_guard;

  // Shared: when init is reaped in the background, the reaper keeps its memory alive until then.
  auto plan = std::make_shared<Plan>();
  Plan& p = *plan;
  p.iso.pid_ns = iso.pid_ns;
  p.iso.proc = iso.proc;
  p.iso.seccomp = iso.seccomp;
  p.iso.uts_ns = iso.uts_ns;
  p.bpf = &bpf;
  p.child_stack.resize(256 << 10);
  p.init_stack.resize(256 << 10);
  const std::string root = kNewRoot;
  for (const auto& [name, target] : top_symlinks) p.symlinks.emplace_back(target, root + "/" + name);
  for (const auto& name : top_binds) {
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

  // Pipes: sync (host -> init), status (init -> host), and per stage stdin/stdout/stderr.
  Fd sync_r, sync_w, status_r, status_w;
  std::vector<Fd> in_r(specs.size()), in_w(specs.size()), out_r(specs.size()), out_w(specs.size()),
      err_r(specs.size()), err_w(specs.size());
  bool pipes_ok = make_pipe(sync_r, sync_w) && make_pipe(status_r, status_w);
  for (size_t i = 0; pipes_ok && i < specs.size(); ++i) {
    pipes_ok = make_pipe(out_r[i], out_w[i]) && make_pipe(err_r[i], err_w[i]);
    if (pipes_ok && specs[i].stdin_data) pipes_ok = make_pipe(in_r[i], in_w[i]);
  }
  if (!pipes_ok) {
    raw.error = str("could not create pipes: ", std::strerror(errno));
    return raw;
  }
  // Large pipe buffers: a program that floods its output is drained in few, large reads.
  for (size_t i = 0; i < specs.size(); ++i) {
    fcntl(out_r[i].fd, F_SETPIPE_SZ, 1 << 20);
    fcntl(err_r[i].fd, F_SETPIPE_SZ, 1 << 20);
  }
  p.sync_fd = sync_r.fd;
  p.status_fd = status_w.fd;
  for (size_t i = 0; i < specs.size(); ++i) {
    const StageSpec& sp = specs[i];
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
    s.stdin_fd = sp.stdin_data ? in_r[i].fd : -1;
    s.stdout_fd = out_w[i].fd;
    s.stderr_fd = err_w[i].fd;
    s.stop_on_failure = sp.stop_on_failure;
    s.wall_ns = static_cast<int64_t>(std::min(sp.wall_s, 1e6) * 1e9);
    p.stages.push_back(std::move(s));
  }

  int flags = clone_flags(iso);
  // A ready network namespace: this thread enters it for the clone() and returns right after.
  Fd ready_net, home_net;
  if (iso.net_ns) ready_net = Fd(netns.take());
  if (ready_net.fd >= 0) {
    home_net = Fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (home_net.fd >= 0 && setns(ready_net.fd, CLONE_NEWNET) == 0) flags &= ~CLONE_NEWNET;
  }
  // The run's init. Preferred: exec grpo-sandbox-init (a small static executable) right after
  // clone(), so that the run's processes descend from a small address space. Forking them from
  // the trainer copied its page tables on every run (the largest single cost of a run in perf),
  // and an exec reports the address space it replaces as part of the new program's ru_maxrss
  // (peak_memory_bytes would include the trainer's memory). Until that exec the clone shares this
  // process's memory (CLONE_VM) and runs exec_init_entry on its own stack, making system calls
  // only; `plan` outlives it (kill_and_reap, the guard below, or the reaper). It also shares this
  // thread's TLS, so a failed call's errno there may be overwritten by this thread: only the errno
  // reported for a failed exec could be wrong. Fallback without the executable: init runs as a
  // copy of this process (fork semantics, no shared memory).
  const bool exec_init = !init_exe.empty();
  Fd plan_fd, exec_err_r, exec_err_w;
  std::string plan_fd_arg;
  const char* init_argv[3] = {"grpo-sandbox-init", nullptr, nullptr};
  std::vector<int> keep_fds;
  ExecInit ex{};
  if (exec_init) {
    const std::string bytes = encode_plan(p);
    plan_fd = Fd(memfd_create("grpo-sandbox-plan", MFD_CLOEXEC));
    bool ok = plan_fd.fd >= 0 && make_pipe(exec_err_r, exec_err_w);
    for (size_t at = 0; ok && at < bytes.size();) {
      ssize_t w = write(plan_fd.fd, bytes.data() + at, bytes.size() - at);
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      at += ok ? static_cast<size_t>(w) : 0;
    }
    if (!ok) {
      raw.error = str("could not hand the run's plan to grpo-sandbox-init: ", std::strerror(errno));
      return raw;
    }
    plan_fd_arg = std::to_string(plan_fd.fd);
    init_argv[1] = plan_fd_arg.c_str();
    keep_fds.push_back(plan_fd.fd);
    keep_fds.push_back(p.status_fd);
    for (const auto& s : p.stages)
      for (int fd : {s.stdin_fd, s.stdout_fd, s.stderr_fd})
        if (fd >= 0) keep_fds.push_back(fd);
    ex = ExecInit{init_exe.c_str(), init_argv, p.sync_fd, exec_err_w.fd, keep_fds.data(),
                  static_cast<int>(keep_fds.size())};
  }
  char* init_top = p.init_stack.data() + p.init_stack.size();
  init_top = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(init_top) & ~uintptr_t(63));
  pid_t pid = exec_init ? clone(exec_init_entry, init_top, flags | CLONE_VM | SIGCHLD, &ex)
                        : static_cast<pid_t>(syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
  if (!exec_init && pid == 0) init_main(p, true);  // never returns
  bool reaped = false;
  // Any exit from here that has not reaped init (an exception) kills it and leaves the Plan to the
  // reaper: init must never run on freed memory.
  struct InitGuard {
    const pid_t& pid;
    bool& reaped;
    Reaper& reaper;
    std::shared_ptr<Plan>& plan;
    ~InitGuard() {
      if (reaped || pid <= 0) return;
      kill(pid, SIGKILL);
      reaper.reap(pid, plan);
    }
  } init_guard{pid, reaped, reaper, plan};
  if (!(flags & CLONE_NEWNET) && iso.net_ns && setns(home_net.fd, CLONE_NEWNET) != 0)
    throw InternalError(str("sandbox: could not return the worker thread to its network namespace: ", std::strerror(errno)));
  if (pid < 0) {
    raw.error = str("clone failed: ", std::strerror(errno));
    raw.setup_errno = errno;
    return raw;
  }
  // Host side from here on.
  sync_r.reset();
  status_w.reset();
  for (size_t i = 0; i < specs.size(); ++i) {
    in_r[i].reset();
    out_w[i].reset();
    err_w[i].reset();
  }
  auto kill_and_reap = [&] {
    if (reaped) return;
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    reaped = true;
  };
  if (iso.user_ns) {
    const std::string map = str("0 0 1\n", kSandboxUid, " ", kSandboxUid, " 1\n");
    const std::string gmap = str("0 0 1\n", kSandboxGid, " ", kSandboxGid, " 1\n");
    if (!write_proc_file(pid, "uid_map", map) || !write_proc_file(pid, "gid_map", gmap)) {
      raw.error = str("writing the user namespace id maps failed: ", std::strerror(errno));
      raw.setup_step = -1;
      kill_and_reap();
      return raw;
    }
  }
  if (write(sync_w.fd, "g", 1) != 1) {
    raw.error = str("could not start the sandbox init: ", std::strerror(errno));
    kill_and_reap();
    return raw;
  }
  sync_w.reset();
  if (exec_init) {
    // EOF: the exec happened (the pipe is close-on-exec) or the clone died before it (the status
    // pipe then reports that); an int: execve failed with that errno.
    exec_err_w.reset();
    int e = 0;
    ssize_t n;
    do n = read(exec_err_r.fd, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof e)) {
      raw.error = str("could not exec the sandbox init ", init_exe, ": ", std::strerror(e));
      raw.setup_step = kSetupExecInit;
      kill_and_reap();
      return raw;
    }
  }

  for (size_t i = 0; i < specs.size(); ++i)
    if (in_w[i].fd >= 0) fcntl(in_w[i].fd, F_SETFL, O_NONBLOCK);
  std::vector<size_t> in_pos(specs.size(), 0);
  const size_t cap = static_cast<size_t>(std::max(0, cfg.max_output_bytes));
  const int64_t setup_deadline = now_ns() + 20'000'000'000LL;  // init's own setup: generous, never the program's fault
  int64_t deadline = setup_deadline;
  int current = -1;
  bool status_open = true;
  int64_t eof_grace_deadline = 0;
  std::string status_buf;
  std::vector<char> buf(1 << 20);

  for (;;) {
    std::vector<pollfd> pfds;
    std::vector<std::pair<int, int>> what;  // (kind, stage): 0 status, 1 out, 2 err, 3 in
    if (status_open) {
      pfds.push_back({status_r.fd, POLLIN, 0});
      what.emplace_back(0, 0);
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      if (out_r[i].fd >= 0) {
        pfds.push_back({out_r[i].fd, POLLIN, 0});
        what.emplace_back(1, static_cast<int>(i));
      }
      if (err_r[i].fd >= 0) {
        pfds.push_back({err_r[i].fd, POLLIN, 0});
        what.emplace_back(2, static_cast<int>(i));
      }
      if (in_w[i].fd >= 0) {
        if (in_pos[i] >= specs[i].stdin_data->size()) {
          in_w[i].reset();  // everything written: EOF for the program
        } else {
          pfds.push_back({in_w[i].fd, POLLOUT, 0});
          what.emplace_back(3, static_cast<int>(i));
        }
      }
    }
    bool outputs_open = false;
    for (const auto& w : what) outputs_open = outputs_open || w.first == 1 || w.first == 2;
    if (!status_open && !outputs_open) break;
    int64_t now = now_ns();
    int64_t limit = deadline;
    if (!status_open) {
      // init is gone; with a PID namespace every writer died with it. Without one a daemon may hold
      // a pipe: give it a moment, then stop listening.
      if (eof_grace_deadline == 0) eof_grace_deadline = now + 200'000'000LL;
      limit = std::min(limit, eof_grace_deadline);
    }
    if (now >= limit) {
      if (!status_open && now >= eof_grace_deadline) break;
      // Wall-clock limit of the current stage (or of the setup): kill the whole run.
      if (current >= 0) {
        StageOutcome& so = raw.stages[static_cast<size_t>(current)];
        if (!so.ended) {
          so.timed_out = true;
          so.wall_s = double(now - so.start_ns) * 1e-9;
        }
      } else if (raw.error.empty()) {
        raw.error = "sandbox setup did not finish within 20 s";
      }
      kill_and_reap();
      deadline = INT64_MAX;
      continue;
    }
    int timeout_ms = static_cast<int>(std::min<int64_t>((limit - now) / 1'000'000 + 1, 1000));
    int rc = poll(pfds.data(), pfds.size(), timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      raw.error = str("poll failed: ", std::strerror(errno));
      kill_and_reap();
      break;
    }
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) continue;
      auto [kind, si] = what[k];
      if (kind == 3) {
        const std::string& data = *specs[static_cast<size_t>(si)].stdin_data;
        size_t& pos = in_pos[static_cast<size_t>(si)];
        ssize_t w = write(in_w[static_cast<size_t>(si)].fd, data.data() + pos, std::min<size_t>(data.size() - pos, 1 << 16));
        if (w > 0) pos += static_cast<size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) in_w[static_cast<size_t>(si)].reset();  // reader gone
        continue;
      }
      int fd = kind == 0 ? status_r.fd : kind == 1 ? out_r[static_cast<size_t>(si)].fd : err_r[static_cast<size_t>(si)].fd;
      ssize_t n = read(fd, buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        if (kind == 0) {
          status_open = false;
          status_r.reset();
        } else if (kind == 1) {
          out_r[static_cast<size_t>(si)].reset();
        } else {
          err_r[static_cast<size_t>(si)].reset();
        }
        continue;
      }
      if (kind == 0) {
        status_buf.append(buf.data(), static_cast<size_t>(n));
        while (status_buf.size() >= sizeof(Record)) {
          Record r;
          std::memcpy(&r, status_buf.data(), sizeof r);
          status_buf.erase(0, sizeof r);
          if (r.kind == REC_SETUP_ERROR) {
            raw.setup_step = r.step;
            raw.setup_errno = r.err;
            raw.error = str("sandbox setup failed at ", step_name(r.step), ": ", std::strerror(r.err));
            continue;
          }
          if (r.stage < 0 || static_cast<size_t>(r.stage) >= raw.stages.size()) continue;
          StageOutcome& so = raw.stages[static_cast<size_t>(r.stage)];
          if (r.kind == REC_START) {
            so.started = true;
            so.start_ns = now_ns();
            current = r.stage;
            // init enforces the limit; this is the backstop should init itself hang.
            deadline = so.start_ns + static_cast<int64_t>(std::min(specs[static_cast<size_t>(r.stage)].wall_s, 1e6) * 1e9) +
                       3'000'000'000LL;
          } else {
            so.ended = true;
            so.wait_status = r.wait_status;
            so.cpu_s = double(r.cpu_us) * 1e-6;
            so.maxrss_kb = r.maxrss_kb;
            so.wall_s = double(r.wall_ns) * 1e-9;
            if (r.kind == REC_CHILD_ERROR) {
              so.child_error_step = r.step;
              so.child_error_errno = r.err;
            }
            so.timed_out = r.timed_out != 0;
            deadline = now_ns() + 20'000'000'000LL;  // until the next stage starts
          }
        }
        continue;
      }
      StageOutcome& so = raw.stages[static_cast<size_t>(si)];
      std::string& dst = kind == 1 ? so.out : so.err;
      bool& trunc = kind == 1 ? so.out_trunc : so.err_trunc;
      size_t room = cap > dst.size() ? cap - dst.size() : 0;
      size_t take = std::min(room, static_cast<size_t>(n));
      dst.append(buf.data(), take);
      if (take < static_cast<size_t>(n)) {
        trunc = true;  // the rest is dropped
        so.dropped += static_cast<int64_t>(static_cast<size_t>(n) - take);
        if (so.dropped > kFloodBytes && !so.ended && !reaped) {
          // Draining forever only burns a worker: a program that keeps flooding is stopped.
          so.flooded = true;
          so.wall_s = double(now_ns() - so.start_ns) * 1e-9;
          kill_and_reap();
          deadline = INT64_MAX;
        }
      }
    }
  }
  // Stages that never started because the host stopped the run share the stopping stage's fate.
  for (size_t i = 0; i < raw.stages.size(); ++i) {
    const StageOutcome& so = raw.stages[i];
    if (!so.timed_out && !so.flooded) continue;
    for (size_t j = i + 1; j < raw.stages.size(); ++j)
      if (!raw.stages[j].started) {
        raw.stages[j].skipped = true;
        raw.stages[j].skipped_because = so.timed_out ? SandboxStatus::TIMEOUT : SandboxStatus::OUTPUT_LIMIT;
      }
    break;
  }
  if (!reaped) {
    // Everything of the run has been reported; init is exiting (the kernel is tearing down its
    // namespaces, which can wait on RCU grace periods). Reap it off this thread's path.
    reaper.reap(pid, plan);
    reaped = true;
  }
  return raw;
}

namespace {

SandboxResult to_result(const StageOutcome& so, const StageSpec& spec, const char* stage_name) {
  SandboxResult r;
  r.stage = stage_name;
  r.stdout_data = so.out;
  r.stderr_data = so.err;
  r.stdout_truncated = so.out_trunc;
  r.stderr_truncated = so.err_trunc;
  r.wall_s = so.wall_s;
  r.cpu_s = so.cpu_s;
  r.peak_memory_bytes = so.maxrss_kb * 1024;
  if (so.child_error_step != 0) {
    r.status = SandboxStatus::SANDBOX_ERROR;
    r.error = str("starting the program failed at ", step_name(so.child_error_step), " (", spec.path, "): ",
                  std::strerror(so.child_error_errno));
    return r;
  }
  if (so.timed_out) {
    r.status = SandboxStatus::TIMEOUT;
    r.signal = SIGKILL;
    return r;
  }
  if (so.flooded) {
    r.status = SandboxStatus::OUTPUT_LIMIT;
    r.signal = SIGKILL;
    return r;
  }
  if (so.skipped) {
    r.status = so.skipped_because;
    r.error = "not run: an earlier run of this program in the same sandbox was stopped";
    return r;
  }
  if (!so.ended) {
    r.status = SandboxStatus::SANDBOX_ERROR;
    r.error = "the sandbox init ended before the program did";
    return r;
  }
  const int st = so.wait_status;
  if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
  const bool cpu_exhausted = so.cpu_s >= std::max(1.0, std::ceil(spec.cpu_s)) - 0.05;
  if (r.signal == SIGXCPU || (r.signal == SIGKILL && cpu_exhausted)) {
    r.status = SandboxStatus::TIMEOUT;
  } else if (r.exit_code != 0 && mentions_memory_exhaustion(so.err)) {
    r.status = SandboxStatus::MEMORY_LIMIT;
  } else if (so.out_trunc || so.err_trunc) {
    r.status = SandboxStatus::OUTPUT_LIMIT;
  } else if (r.signal != 0) {
    r.status = SandboxStatus::KILLED_BY_SIGNAL;
  } else {
    r.status = r.exit_code == 0 ? SandboxStatus::OK : SandboxStatus::FAILED;
  }
  return r;
}

SandboxResult error_result(const std::string& msg, const char* stage = "run") {
  SandboxResult r;
  r.status = SandboxStatus::SANDBOX_ERROR;
  r.stage = stage;
  r.error = msg;
  return r;
}

bool valid_file_name(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos && n.find('\0') == std::string::npos &&
         n.size() < 200;
}

}  // namespace

Sandbox::Sandbox(const config::SandboxConfig& cfg) : cfg_(cfg), impl_(std::make_unique<Impl>()) {
  impl_->python_path = find_on_sandbox_path(cfg.python);
  impl_->cxx_path = find_on_sandbox_path(cfg.cxx);
  // The top of the view: merged-/usr symlinks are recreated, real directories bound read-only.
  for (const char* name : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    std::string path = str("/", name);
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
      if (n > 0) impl_->top_symlinks.emplace_back(name, std::string(target, static_cast<size_t>(n)));
    } else if (S_ISDIR(st.st_mode)) {
      impl_->top_binds.push_back(name);
    }
  }
  impl_->top_binds.push_back("usr");
  impl_->top_binds.push_back("etc");
  try {
    impl_->bpf = build_seccomp_filter();
  } catch (const std::exception& e) {
    iso_.seccomp = false;
    log::warn_once("sandbox.seccomp", str("sandbox: no seccomp filter (", e.what(), "); programs run without it"));
  }

  impl_->init_exe = find_init_exe();
  if (impl_->init_exe.empty())
    log::warn_once("sandbox.init", "sandbox: grpo-sandbox-init not found (beside this executable, at its build path, "
                                   "or in $GRPO_SANDBOX_INIT): each run's init is a fork of this process, which is "
                                   "slower and makes peak_memory_bytes include this process's memory");
  // Probe: run /bin/true (or the first binary we find) with everything on; drop what fails.
  std::string probe = find_on_sandbox_path("true");
  GRPO_REQUIRE(!probe.empty(), "sandbox: /usr/bin/true not found; cannot probe the sandbox");
  StageSpec spec;
  spec.path = probe;
  spec.argv = {"true"};
  spec.wall_s = 10;
  spec.cpu_s = 5;
  spec.memory_bytes = 256LL << 20;
  spec.max_processes = 4;
  spec.file_size_bytes = 1 << 20;
  spec.open_files = 16;
  for (int attempt = 0; attempt < 8; ++attempt) {
    Impl::Raw raw = impl_->run_stages(cfg_, iso_, {}, {spec});
    if (raw.error.empty() && raw.stages[0].ended && raw.stages[0].child_error_step == 0 &&
        WIFEXITED(raw.stages[0].wait_status) && WEXITSTATUS(raw.stages[0].wait_status) == 0)
      break;
    std::string why = !raw.error.empty() ? raw.error
                      : raw.stages[0].child_error_step
                          ? str(step_name(raw.stages[0].child_error_step), ": ", std::strerror(raw.stages[0].child_error_errno))
                          : "the probe program failed";
    auto drop = [&](bool& flag, const char* key, const char* what) {
      flag = false;
      log::warn_once(str("sandbox.", key), str("sandbox: the kernel refused ", what, " (", why, "); running without it"));
    };
    if (raw.setup_step == kSetupExecInit && !impl_->init_exe.empty()) {
      log::warn_once("sandbox.init", str("sandbox: ", why, "; each run's init is a fork of this process instead"));
      impl_->init_exe.clear();
    } else if (raw.stages[0].child_error_step == STEP_CHILD_SECCOMP && iso_.seccomp) {
      drop(iso_.seccomp, "seccomp", "the seccomp filter");
    } else if (raw.setup_step == STEP_PROC && iso_.proc) {
      drop(iso_.proc, "proc", "a private /proc");
    } else if ((raw.setup_step == -1 || raw.setup_errno == EPERM || raw.setup_errno == EINVAL ||
                raw.setup_errno == ENOSPC || raw.setup_errno == EUSERS) && iso_.user_ns) {
      drop(iso_.user_ns, "user_ns", "a user namespace");
    } else if (raw.setup_errno != 0 && raw.setup_step == 0 && (iso_.net_ns || iso_.ipc_ns || iso_.uts_ns)) {
      iso_.net_ns = iso_.ipc_ns = iso_.uts_ns = false;
      log::warn_once("sandbox.net_ns", str("sandbox: the kernel refused network/IPC/UTS namespaces (", why,
                                           "); programs can reach the host network"));
    } else if (raw.setup_errno != 0 && raw.setup_step == 0 && iso_.pid_ns) {
      drop(iso_.pid_ns, "pid_ns", "a PID namespace; runs are killed by session and may leave daemons");
    } else {
      throw InputError(str("sandbox: cannot set up even the minimal sandbox (mount namespace, read-only view): ", why));
    }
  }
  if (iso_.net_ns) impl_->netns.start(static_cast<size_t>(std::max(2, 2 * cfg_.num_workers)));
  log::debug(str("sandbox: isolation ", iso_.describe()));
}

Sandbox::~Sandbox() = default;

int64_t Sandbox::sandbox_errors() const { return impl_->errors.load(); }

SandboxResult Sandbox::run(const SandboxRequest& req, const std::string& stdin_data) const {
  auto v = run_each(req, {stdin_data});
  return v.at(0);
}

std::vector<SandboxResult> Sandbox::run_each(const SandboxRequest& req, const std::vector<std::string>& stdins) const {
  if (stdins.empty()) return {};
  // Each run holds three pipes open in the host until the sandbox ends: long test lists go in
  // chunks (a cpp program is compiled once per chunk).
  constexpr size_t kChunk = 32;
  if (stdins.size() > kChunk) {
    std::vector<SandboxResult> all;
    for (size_t i = 0; i < stdins.size(); i += kChunk) {
      std::vector<std::string> part(stdins.begin() + static_cast<std::ptrdiff_t>(i),
                                    stdins.begin() + static_cast<std::ptrdiff_t>(std::min(stdins.size(), i + kChunk)));
      auto r = run_each(req, part);
      all.insert(all.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
    }
    return all;
  }
  auto fail_all = [&](const std::string& msg) {
    impl_->errors += static_cast<int64_t>(stdins.size());
    log::warn_once(str("sandbox.error.", msg.substr(0, 40)), str("sandbox: ", msg));
    return std::vector<SandboxResult>(stdins.size(), error_result(msg));
  };
  for (const auto& f : req.files)
    if (!valid_file_name(f.name) || f.name == "main.py" || f.name == "main.cpp" || f.name == "main")
      return fail_all(str("invalid or reserved sandbox file name '", f.name, "'"));
  const bool cpp = req.language == config::CodeLanguage::CPP;
  const std::string& tool = cpp ? impl_->cxx_path : impl_->python_path;
  if (tool.empty())
    return fail_all(str(cpp ? "sandbox.cxx '" : "sandbox.python '", cpp ? cfg_.cxx : cfg_.python,
                        "' was not found on the sandbox PATH (", kSandboxPath, "; the sandbox sees only /usr and /bin)"));

  std::vector<SandboxFile> files = req.files;
  files.push_back({cpp ? "main.cpp" : "main.py", req.source});
  const int64_t mib = 1 << 20;
  std::vector<StageSpec> specs;
  if (cpp) {
    StageSpec c;
    c.path = tool;
    c.argv = {"g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp"};
    c.wall_s = cfg_.compile_wall_time_s;
    c.cpu_s = cfg_.compile_cpu_time_s;
    c.memory_bytes = int64_t(cfg_.compile_memory_mb) * mib;
    c.max_processes = std::max(cfg_.max_processes, 16);
    c.file_size_bytes = int64_t(std::max(cfg_.max_file_size_mb, 64)) * mib;
    c.open_files = std::max(cfg_.max_open_files, 256);
    c.stop_on_failure = true;
    specs.push_back(c);
  }
  for (const auto& in : stdins) {
    StageSpec s;
    s.path = cpp ? "/tmp/main" : tool;
    s.argv = cpp ? std::vector<std::string>{"./main"} : std::vector<std::string>{"python3", "-B", "main.py"};
    for (const auto& a : req.args) s.argv.push_back(a);
    s.stdin_data = &in;
    s.wall_s = cfg_.wall_time_s;
    s.cpu_s = cfg_.cpu_time_s;
    s.memory_bytes = int64_t(cfg_.memory_mb) * mib;
    s.max_processes = cfg_.max_processes;
    s.file_size_bytes = int64_t(cfg_.max_file_size_mb) * mib;
    s.open_files = cfg_.max_open_files;
    specs.push_back(s);
  }

  Impl::Raw raw = impl_->run_stages(cfg_, iso_, files, specs);
  if (!raw.error.empty()) return fail_all(raw.error);
  std::vector<SandboxResult> out;
  size_t first_run = 0;
  if (cpp) {
    first_run = 1;
    SandboxResult c = to_result(raw.stages[0], specs[0], "compile");
    if (c.status != SandboxStatus::OK) {
      if (c.status == SandboxStatus::SANDBOX_ERROR) impl_->errors += static_cast<int64_t>(stdins.size());
      return std::vector<SandboxResult>(stdins.size(), c);
    }
  }
  for (size_t i = first_run; i < specs.size(); ++i) {
    SandboxResult r = to_result(raw.stages[i], specs[i], "run");
    if (r.status == SandboxStatus::SANDBOX_ERROR) {
      impl_->errors += 1;
      log::warn_once(str("sandbox.error.", r.error.substr(0, 40)), str("sandbox: ", r.error));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace grpo::reward
