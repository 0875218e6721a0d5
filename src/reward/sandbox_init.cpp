// The sandbox's init and program child: system calls only (see sandbox_init.h).
#include "sandbox_init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace grpo::reward::sandbox_detail {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// ---------------------------------------------------------------------------------------------
// Child side. Only async-signal-safe calls from here to the matching end marker.

void write_all_raw(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

[[noreturn]] void init_fail(const Plan& p, int step) {
  Record r{};
  r.kind = REC_SETUP_ERROR;
  r.step = step;
  r.err = errno;
  write_all_raw(p.status_fd, &r, sizeof r);
  _exit(1);
}

// Closes every descriptor except the sorted `keep` ones.
bool close_all_but(int* keep, int n) {
  std::sort(keep, keep + n);  // std::sort on ints does not allocate
  unsigned lo = 0;
  for (int i = 0; i < n; ++i) {
    if (keep[i] < 0) continue;
    if (static_cast<unsigned>(keep[i]) > lo && syscall(SYS_close_range, lo, keep[i] - 1, 0) != 0) return false;
    lo = static_cast<unsigned>(keep[i]) + 1;
  }
  return syscall(SYS_close_range, lo, ~0U, 0) == 0;
}

[[noreturn]] void child_fail(int err_fd, int step) {
  int32_t msg[2] = {step, errno};
  write_all_raw(err_fd, msg, sizeof msg);
  _exit(127);
}

// The program: becomes the unprivileged user, takes its limits and filter, and execs.
[[noreturn]] void stage_child(const Plan& p, const StagePlan& s, int err_fd) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  setsid();

  int in_fd = s.stdin_fd;
  if (in_fd < 0) in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) child_fail(err_fd, STEP_CHILD_FDS);
  // Move the exec-error pipe to 3 first (it may sit on 0..2 in theory), then stdio.
  int e3 = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
  int i3 = fcntl(in_fd, F_DUPFD_CLOEXEC, 10);
  int o3 = fcntl(s.stdout_fd, F_DUPFD_CLOEXEC, 10);
  int r3 = fcntl(s.stderr_fd, F_DUPFD_CLOEXEC, 10);
  if (e3 < 0 || i3 < 0 || o3 < 0 || r3 < 0) child_fail(err_fd, STEP_CHILD_FDS);
  if (dup2(i3, 0) < 0 || dup2(o3, 1) < 0 || dup2(r3, 2) < 0 || dup3(e3, 3, O_CLOEXEC) < 0)
    child_fail(e3, STEP_CHILD_FDS);
  err_fd = 3;
  if (syscall(SYS_close_range, 4U, ~0U, 0) != 0) child_fail(err_fd, STEP_CHILD_FDS);
  if (chdir("/tmp") != 0) child_fail(err_fd, STEP_CHILD_FDS);

  for (const Limit& l : s.limits) {
    rlimit rl{l.soft, l.hard};
    if (setrlimit(l.resource, &rl) != 0) child_fail(err_fd, STEP_CHILD_RLIMIT);
  }
  // Raw system calls: glibc's setresuid() in a copy of a multi-threaded process would try to
  // change the credentials of threads that do not exist here and wait for them forever.
  if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, kSandboxGid, kSandboxGid, kSandboxGid) != 0 ||
      syscall(SYS_setresuid, kSandboxUid, kSandboxUid, kSandboxUid) != 0)
    child_fail(err_fd, STEP_CHILD_IDS);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(err_fd, STEP_CHILD_NNP);
  if (p.iso.seccomp && p.bpf && !p.bpf->empty()) {
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(p.bpf->size() / sizeof(sock_filter));
    prog.filter = reinterpret_cast<sock_filter*>(const_cast<uint8_t*>(p.bpf->data()));
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) child_fail(err_fd, STEP_CHILD_SECCOMP);
  }
  execve(s.path.c_str(), s.argv.data(), const_cast<char* const*>(p.env.data()));
  child_fail(err_fd, STEP_CHILD_EXEC);
}

struct StageArgs {
  const Plan* p;
  const StagePlan* s;
  int err_fd, close_fd;
};
int stage_entry(void* arg) {
  const auto* a = static_cast<const StageArgs*>(arg);
  close(a->close_fd);
  stage_child(*a->p, *a->s, a->err_fd);
}

bool bind_read_only(const char* dst) {
  // Recursive where the kernel has mount_setattr (5.12+), else the top mount only.
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (syscall(SYS_mount_setattr, -1, dst, AT_RECURSIVE, &attr, sizeof attr) == 0) return true;
  if (errno != ENOSYS) return false;
  return mount(nullptr, dst, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) == 0;
}

namespace {

// 1. The process: its descriptors, session and signals; then it waits for the host's go.
void init_process(const Plan& p, bool wait_for_go, const sigset_t& chld) {
  // Only our own descriptors: another thread's pipes must not be held open by this run.
  {
    int keep[512];
    int n = 0;
    keep[n++] = p.sync_fd;
    keep[n++] = p.status_fd;
    for (const auto& s : p.stages) {
      if (n + 3 > 512) break;
      keep[n++] = s.stdin_fd;
      keep[n++] = s.stdout_fd;
      keep[n++] = s.stderr_fd;
    }
    if (!close_all_but(keep, n)) init_fail(p, STEP_FDS);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // the host thread died: the run dies with it
  // A session of its own: not the trainer's terminal or process group, and (with autogroup
  // scheduling) its own scheduling group, like any separately started program.
  setsid();
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  if (wait_for_go) {
    char go = 0;
    ssize_t r;
    do r = read(p.sync_fd, &go, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1 || go != 'g') _exit(1);  // the host gave up (or died) before the maps were written
    close(p.sync_fd);
  }
  // Non-dumpable: the unprivileged program may not open /proc/1/mem or ptrace us.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  umask(022);  // the host's umask (maybe 077) must not make the program's files unreadable to it
  if (p.iso.uts_ns && sethostname("sandbox", 7) != 0) init_fail(p, STEP_HOSTNAME);

}

// /dev: the allowed nodes bound from the host's, the stdio links, and a size-limited /dev/shm.
void populate_dev(const Plan& p) {
  char dst[256], src[64];
  for (const auto& n : p.dev_nodes) {
    size_t dl = p.dev_dir.size();
    if (dl + 2 + n.size() >= sizeof dst || 6 + n.size() >= sizeof src) init_fail(p, STEP_DEV);
    memcpy(dst, p.dev_dir.data(), dl);
    dst[dl] = '/';
    memcpy(dst + dl + 1, n.data(), n.size() + 1);
    memcpy(src, "/dev/", 5);
    memcpy(src + 5, n.data(), n.size() + 1);
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) init_fail(p, STEP_DEV);
    close(fd);
    if (mount(src, dst, nullptr, MS_BIND, nullptr) != 0) init_fail(p, STEP_DEV);
  }
  static const char* const links[][2] = {{"/proc/self/fd", "fd"},
                                         {"/proc/self/fd/0", "stdin"},
                                         {"/proc/self/fd/1", "stdout"},
                                         {"/proc/self/fd/2", "stderr"}};
  for (const auto& l : links) {
    size_t dl = p.dev_dir.size();
    memcpy(dst, p.dev_dir.data(), dl);
    dst[dl] = '/';
    memcpy(dst + dl + 1, l[1], strlen(l[1]) + 1);
    if (symlink(l[0], dst) != 0) init_fail(p, STEP_DEV);
  }
  if (mkdir(p.shm_dir.c_str(), 01777) != 0 ||
      mount("grpo-shm", p.shm_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, p.shm_opts.c_str()) != 0)
    init_fail(p, STEP_DEV);
  mount(nullptr, p.dev_dir.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, p.dev_opts.c_str());
}

// The program's files in the work directory.
void write_files(const Plan& p) {
  for (const auto& f : p.files) {
    int fd = open(f.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) init_fail(p, STEP_WRITE_FILE);
    const char* d = f.content->data();
    size_t left = f.content->size();
    while (left > 0) {
      ssize_t w = write(fd, d, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        init_fail(p, STEP_WRITE_FILE);
      }
      d += w;
      left -= static_cast<size_t>(w);
    }
    close(fd);
  }
}

// 2. The filesystem view: a tmpfs root with read-only binds of the host's system directories,
// /dev, /proc and the work tmpfs, pivoted into.
void build_view(const Plan& p) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) init_fail(p, STEP_MOUNT_PRIVATE);
  if (mount("grpo-sandbox", kNewRoot, "tmpfs", MS_NOSUID | MS_NODEV, p.root_opts.c_str()) != 0)
    init_fail(p, STEP_ROOT_TMPFS);
  for (const auto& d : p.mkdirs)
    if (mkdir(d.c_str(), 0755) != 0) init_fail(p, STEP_MKDIR);
  for (const auto& [target, link] : p.symlinks)
    if (symlink(target.c_str(), link.c_str()) != 0) init_fail(p, STEP_SYMLINK);
  for (const auto& b : p.binds) {
    if (mount(b.src.c_str(), b.dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) init_fail(p, STEP_BIND);
    if (b.read_only && !bind_read_only(b.dst.c_str())) init_fail(p, STEP_BIND_RO);
  }
  if (mount("grpo-dev", p.dev_dir.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, p.dev_opts.c_str()) != 0)
    init_fail(p, STEP_DEV);
  populate_dev(p);
  if (p.iso.proc &&
      mount("proc", p.proc_dir.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    init_fail(p, STEP_PROC);
  if (mount("grpo-work", p.work_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.work_opts.c_str()) != 0)
    init_fail(p, STEP_WORK_TMPFS);
  write_files(p);
  if (chdir(kNewRoot) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 ||
      chdir("/") != 0)
    init_fail(p, STEP_PIVOT);
  if (mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    init_fail(p, STEP_ROOT_RO);

}

// Waits for the stage's program `pid` (and whatever it started) to end or for its wall-clock
// limit, filling `end`'s usage. Returns the program's wait status.
int wait_stage(const Plan& p, pid_t pid, int64_t deadline, const sigset_t& chld, Record& end) {
  int status = 0;
  for (;;) {
    rusage ru{};
    int st = 0;
    pid_t r = wait4(-1, &st, end.timed_out ? 0 : WNOHANG, &ru);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) {
      int64_t left = deadline - now_ns();
      if (left <= 0) {
        // Wall-clock limit: the whole stage dies, not only its first process.
        end.timed_out = 1;
        if (p.iso.pid_ns) kill(-1, SIGKILL);
        else kill(-pid, SIGKILL);
        continue;
      }
      timespec ts{static_cast<time_t>(left / 1000000000LL), static_cast<long>(left % 1000000000LL)};
      sigtimedwait(&chld, nullptr, &ts);
      continue;
    }
    end.cpu_us += int64_t(ru.ru_utime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + int64_t(ru.ru_stime.tv_sec) * 1000000 +
                  ru.ru_stime.tv_usec;
    end.maxrss_kb = std::max<int64_t>(end.maxrss_kb, ru.ru_maxrss);
    if (r == pid) {
      status = st;
      break;
    }
  }
  return status;
}

// 3. One stage: start the program, wait for it, report. Exits init when the run must stop here.
void run_stage(const Plan& p, size_t si, const sigset_t& chld) {
  const StagePlan& s = p.stages[si];
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) != 0) init_fail(p, STEP_EXEC_PIPE);
  Record start{};
  start.kind = REC_START;
  start.stage = static_cast<int32_t>(si);
  write_all_raw(p.status_fd, &start, sizeof start);
  int64_t t0 = now_ns();
  // vfork-style: the child borrows init's memory until it execs (no page-table copy of what
  // init inherited from the host); init waits meanwhile.
  StageArgs args{&p, &s, ep[1], ep[0]};
  char* top = const_cast<char*>(p.child_stack.data()) + p.child_stack.size();
  top = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(63));
  pid_t pid = clone(stage_entry, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  if (pid < 0) init_fail(p, STEP_FORK);
  close(ep[1]);
  // Our copies of this stage's pipes: the program holds its own now.
  if (s.stdin_fd >= 0) close(s.stdin_fd);
  close(s.stdout_fd);
  close(s.stderr_fd);
  int32_t msg[2] = {0, 0};
  ssize_t got;
  do got = read(ep[0], msg, sizeof msg);
  while (got < 0 && errno == EINTR);
  close(ep[0]);

  Record end{};
  end.kind = REC_END;
  end.stage = static_cast<int32_t>(si);
  const int status = wait_stage(p, pid, t0 + s.wall_ns, chld, end);
  end.wall_ns = now_ns() - t0;
  end.wait_status = status;
  if (got == static_cast<ssize_t>(sizeof msg)) {
    end.kind = REC_CHILD_ERROR;
    end.step = msg[0];
    end.err = msg[1];
  }
  // Whatever the stage left behind (daemons, orphans) dies before the next stage starts.
  if (p.iso.pid_ns) {
    kill(-1, SIGKILL);
    while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
  }
  write_all_raw(p.status_fd, &end, sizeof end);
  if (end.kind == REC_CHILD_ERROR) _exit(1);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok && s.stop_on_failure) _exit(0);
}

}  // namespace

[[noreturn]] void init_main(const Plan& p, bool wait_for_go) {
  sigset_t chld;  // blocked, and waited for with a timeout in wait_stage
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  init_process(p, wait_for_go, chld);
  build_view(p);
  for (size_t si = 0; si < p.stages.size(); ++si) run_stage(p, si, chld);
  _exit(0);
}
// ---------------------------------------------------------------------------------------------
// End of the async-signal-safe part.

// ---------------------------------------------------------------------------------------------
// Plan <-> bytes (host side and grpo-sandbox-init; ordinary code, allocation allowed).
namespace {

struct Writer {
  std::string out;
  template <class T>
  void pod(const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& v) {
    pod<uint64_t>(v.size());
    out.append(v);
  }
  void strs(const std::vector<std::string>& v) {
    pod<uint64_t>(v.size());
    for (const auto& x : v) str(x);
  }
};

struct Reader {
  const std::string& in;
  size_t at = 0;
  bool ok = true;
  template <class T>
  T pod() {
    T v{};
    if (at + sizeof v > in.size()) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data() + at, sizeof v);
    at += sizeof v;
    return v;
  }
  size_t count() {
    uint64_t n = pod<uint64_t>();
    if (n > in.size()) ok = false;  // a count can never exceed the bytes that would follow
    return ok ? static_cast<size_t>(n) : 0;
  }
  std::string str() {
    size_t n = count();
    if (!ok || at + n > in.size()) {
      ok = false;
      return {};
    }
    std::string v = in.substr(at, n);
    at += n;
    return v;
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v(count());
    for (auto& x : v) x = str();
    return v;
  }
};

constexpr uint64_t kPlanMagic = 0x31706e616c707267ull;  // "grpplan1"

}  // namespace

std::string encode_plan(const Plan& p) {
  Writer w;
  w.pod(kPlanMagic);
  w.pod(p.iso);
  w.pod<int32_t>(p.sync_fd);
  w.pod<int32_t>(p.status_fd);
  w.strs(p.mkdirs);
  w.pod<uint64_t>(p.symlinks.size());
  for (const auto& [t, l] : p.symlinks) {
    w.str(t);
    w.str(l);
  }
  w.pod<uint64_t>(p.binds.size());
  for (const auto& b : p.binds) {
    w.str(b.src);
    w.str(b.dst);
    w.pod<uint8_t>(b.read_only);
  }
  w.strs(p.dev_nodes);
  for (const auto* x : {&p.root_opts, &p.dev_opts, &p.shm_opts, &p.work_opts, &p.proc_dir, &p.dev_dir, &p.shm_dir,
                        &p.work_dir})
    w.str(*x);
  w.pod<uint64_t>(p.files.size());
  for (const auto& f : p.files) {
    w.str(f.path);
    w.str(f.content ? *f.content : f.owned);
  }
  w.pod<uint64_t>(p.stages.size());
  for (const auto& s : p.stages) {
    w.str(s.path);
    w.strs(s.argv_s);
    w.pod<uint64_t>(s.limits.size());
    for (const auto& l : s.limits) w.pod(l);
    w.pod<int32_t>(s.stdin_fd);
    w.pod<int32_t>(s.stdout_fd);
    w.pod<int32_t>(s.stderr_fd);
    w.pod<uint8_t>(s.stop_on_failure);
    w.pod<int64_t>(s.wall_ns);
  }
  w.strs(p.env_s);
  const std::vector<uint8_t> none;
  const auto& bpf = p.bpf ? *p.bpf : none;
  w.str(std::string(bpf.begin(), bpf.end()));
  w.pod<uint64_t>(p.child_stack.size());
  return std::move(w.out);
}

bool decode_plan(const std::string& bytes, Plan& p) {
  Reader r{bytes};
  if (r.pod<uint64_t>() != kPlanMagic) return false;
  p.iso = r.pod<InitIsolation>();
  p.sync_fd = r.pod<int32_t>();
  p.status_fd = r.pod<int32_t>();
  p.mkdirs = r.strs();
  p.symlinks.resize(r.count());
  for (auto& [t, l] : p.symlinks) {
    t = r.str();
    l = r.str();
  }
  p.binds.resize(r.count());
  for (auto& b : p.binds) {
    b.src = r.str();
    b.dst = r.str();
    b.read_only = r.pod<uint8_t>() != 0;
  }
  p.dev_nodes = r.strs();
  for (auto* x : {&p.root_opts, &p.dev_opts, &p.shm_opts, &p.work_opts, &p.proc_dir, &p.dev_dir, &p.shm_dir,
                  &p.work_dir})
    *x = r.str();
  p.files.resize(r.count());
  for (auto& f : p.files) {
    f.path = r.str();
    f.owned = r.str();
  }
  for (auto& f : p.files) f.content = &f.owned;  // after the resize: the addresses are final
  p.stages.resize(r.count());
  for (auto& s : p.stages) {
    s.path = r.str();
    s.argv_s = r.strs();
    s.limits.resize(r.count());
    for (auto& l : s.limits) l = r.pod<Limit>();
    s.stdin_fd = r.pod<int32_t>();
    s.stdout_fd = r.pod<int32_t>();
    s.stderr_fd = r.pod<int32_t>();
    s.stop_on_failure = r.pod<uint8_t>() != 0;
    s.wall_ns = r.pod<int64_t>();
    s.argv.clear();
    for (auto& a : s.argv_s) s.argv.push_back(a.data());
    s.argv.push_back(nullptr);
  }
  p.env_s = r.strs();
  p.env.clear();
  for (auto& e : p.env_s) p.env.push_back(e.data());
  p.env.push_back(nullptr);
  std::string bpf = r.str();
  p.bpf_owned.assign(bpf.begin(), bpf.end());
  p.bpf = &p.bpf_owned;
  p.child_stack.resize(r.pod<uint64_t>());
  return r.ok && r.at == bytes.size() && p.child_stack.size() >= 4096;
}

int init_entry(void* arg) { init_main(*static_cast<const Plan*>(arg), true); }

}  // namespace grpo::reward::sandbox_detail
