#include "grpo/dist/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "grpo/util/error.h"

extern char** environ;

namespace grpo::dist {
namespace {

using Clock = std::chrono::steady_clock;

int g_signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const int saved = errno;
  unsigned char c = static_cast<unsigned char>(sig);
  ssize_t n = ::write(g_signal_pipe[1], &c, 1);
  (void)n;
  errno = saved;
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // our own stdout is gone; nothing better to do with the worker's output
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

struct Stream {
  int fd = -1;
  int out_fd = 1;
  std::string partial;
};

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool alive = true;
  int status = 0;
  Stream out, err;
};

std::string signal_name(int sig) {
  const char* d = ::sigabbrev_np(sig);
  return d ? str("SIG", d) : str("signal ", sig);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return str("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return str("was killed by ", signal_name(WTERMSIG(status)));
  return "stopped";
}

// Emits complete lines of `data` (and, when `flush`, the rest), each prefixed.
void emit(Stream& s, const std::string& prefix, const char* data, size_t n, bool flush) {
  s.partial.append(data, n);
  size_t start = 0;
  for (;;) {
    size_t nl = s.partial.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = prefix + s.partial.substr(start, nl - start + 1);
    write_all(s.out_fd, line.data(), line.size());
    start = nl + 1;
  }
  s.partial.erase(0, start);
  if (flush && !s.partial.empty()) {
    std::string line = prefix + s.partial + "\n";
    write_all(s.out_fd, line.data(), line.size());
    s.partial.clear();
  }
}

// Reads what is available; returns false at EOF (and closes the fd).
bool pump(Stream& s, const std::string& prefix) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(s.fd, buf, sizeof buf);
    if (n > 0) {
      emit(s, prefix, buf, static_cast<size_t>(n), false);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    emit(s, prefix, nullptr, 0, true);
    ::close(s.fd);
    s.fd = -1;
    return false;
  }
}

const char* const kOwnedVars[] = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                                  "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                                  "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT",
                                  "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID"};

std::vector<std::string> worker_env(const LaunchOptions& o, int rank, int port) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string k = kv.substr(0, kv.find('='));
    if (std::find(std::begin(kOwnedVars), std::end(kOwnedVars), k) != std::end(kOwnedVars)) continue;
    env.push_back(kv);
  }
  auto set = [&](const std::string& k, const std::string& v) { env.push_back(k + "=" + v); };
  set("RANK", std::to_string(rank));
  set("LOCAL_RANK", std::to_string(rank));
  set("GROUP_RANK", "0");
  set("ROLE_RANK", std::to_string(rank));
  set("WORLD_SIZE", std::to_string(o.nproc));
  set("LOCAL_WORLD_SIZE", std::to_string(o.nproc));
  set("ROLE_WORLD_SIZE", std::to_string(o.nproc));
  set("MASTER_ADDR", o.master_addr);
  set("MASTER_PORT", std::to_string(port));
  set("TORCHELASTIC_RESTART_COUNT", "0");
  set("TORCHELASTIC_MAX_RESTARTS", "0");
  set("TORCHELASTIC_RUN_ID", "grpo-launch");
  // Like torchrun: N processes each spawning one OpenMP thread per core would oversubscribe.
  if (o.nproc > 1 && std::getenv("OMP_NUM_THREADS") == nullptr) {
    unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    set("OMP_NUM_THREADS", std::to_string(std::max(1u, hw / static_cast<unsigned>(o.nproc))));
  }
  return env;
}

void signal_all(std::vector<Worker>& ws, int sig) {
  for (auto& w : ws)
    if (w.alive && ::kill(-w.pid, sig) != 0) ::kill(w.pid, sig);  // group gone: the worker itself
}

}  // namespace

int pick_free_port(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(str("launch: cannot create a socket: ", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(str("launch: cannot bind a free port on ", host, ": ", std::strerror(e)));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

LaunchOutcome launch_workers(const LaunchOptions& o) {
  GRPO_REQUIRE(o.nproc >= 1, "launch: --nproc must be at least 1, got ", o.nproc);
  GRPO_REQUIRE(::access(o.program.c_str(), X_OK) == 0, "launch: '", o.program, "' is not an executable file");
  GRPO_REQUIRE(o.master_port >= 0 && o.master_port <= 65535, "launch: --master-port ", o.master_port,
               " is not a TCP port");
  const int port = o.master_port ? o.master_port : pick_free_port(o.master_addr);

  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    throw Error(str("launch: pipe: ", std::strerror(errno)));
  struct sigaction sa{}, old_int{}, old_term{}, old_chld{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGCHLD, &sa, &old_chld);

  const pid_t parent = ::getpid();
  std::vector<Worker> ws(o.nproc);
  std::vector<std::string> argv_s{o.program};
  argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
  for (int r = 0; r < o.nproc; ++r) {
    auto env_s = worker_env(o, r, port);
    std::vector<char*> argv, envp;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw Error(str("launch: pipe: ", std::strerror(errno)));
    pid_t pid = ::fork();
    if (pid < 0) throw Error(str("launch: fork: ", std::strerror(errno)));
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the launcher died: do not train on as an orphan
      if (::getppid() != parent) ::_exit(1);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::signal(SIGCHLD, SIG_DFL);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::execve(o.program.c_str(), argv.data(), envp.data());
      const char* msg = "launch: exec failed\n";
      write_all(2, msg, std::strlen(msg));
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(out[1]);
    ::close(err[1]);
    ::fcntl(out[0], F_SETFL, O_NONBLOCK);
    ::fcntl(err[0], F_SETFL, O_NONBLOCK);
    ws[r].rank = r;
    ws[r].pid = pid;
    ws[r].out = {out[0], 1, {}};
    ws[r].err = {err[0], 2, {}};
  }

  LaunchOutcome res;
  bool stopping = false, killed = false;
  int interrupted_by = 0;
  Clock::time_point kill_at{}, all_dead_at{};
  for (;;) {
    std::vector<pollfd> fds{{g_signal_pipe[0], POLLIN, 0}};
    std::vector<std::pair<Stream*, int>> owners;
    for (auto& w : ws)
      for (Stream* s : {&w.out, &w.err})
        if (s->fd >= 0) {
          fds.push_back({s->fd, POLLIN, 0});
          owners.emplace_back(s, w.rank);
        }
    ::poll(fds.data(), fds.size(), 100);

    unsigned char sigs[64];
    ssize_t ns;
    while ((ns = ::read(g_signal_pipe[0], sigs, sizeof sigs)) > 0) {
      for (ssize_t k = 0; k < ns; ++k) {
        int sig = sigs[k];
        if (sig != SIGINT && sig != SIGTERM) continue;
        if (interrupted_by == 0) interrupted_by = sig;
        if (!stopping) {
          stopping = true;
          signal_all(ws, sig);
          kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
        } else {
          signal_all(ws, SIGKILL);  // a second interrupt: do not wait out the grace period
          killed = true;
        }
      }
    }
    for (size_t k = 1; k < fds.size(); ++k)
      if (fds[k].revents) pump(*owners[k - 1].first, o.prefix_output ? str("[rank ", owners[k - 1].second, "] ") : "");

    // Reap; when several workers are found dead in one pass, blame one killed by a signal first:
    // the others most likely failed because it vanished from their collectives.
    Worker* culprit = nullptr;
    for (auto& w : ws) {
      if (!w.alive) continue;
      int st = 0;
      pid_t p = ::waitpid(w.pid, &st, WNOHANG);
      if (p != w.pid) continue;
      w.alive = false;
      w.status = st;
      const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ok && (culprit == nullptr || (WIFSIGNALED(st) && !WIFSIGNALED(culprit->status)))) culprit = &w;
    }
    if (culprit && res.failed_rank < 0 && interrupted_by == 0 && !stopping) {
      res.failed_rank = culprit->rank;
      res.message = str("rank ", culprit->rank, " (pid ", culprit->pid, ") ", describe_status(culprit->status));
      stopping = true;
      signal_all(ws, SIGTERM);
      kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_s * 1000));
    }
    const bool any_alive = std::any_of(ws.begin(), ws.end(), [](const Worker& w) { return w.alive; });
    if (stopping && !killed && any_alive && Clock::now() >= kill_at) {
      signal_all(ws, SIGKILL);
      killed = true;
      if (!res.message.empty()) res.message += str("; the other ranks ignored SIGTERM for ", o.grace_s, " s and were killed");
    }
    if (!any_alive) {
      const bool open = std::any_of(ws.begin(), ws.end(), [](const Worker& w) { return w.out.fd >= 0 || w.err.fd >= 0; });
      if (!open) break;
      // A worker's own children may hold its pipes open; do not wait for them long.
      if (all_dead_at == Clock::time_point{}) all_dead_at = Clock::now();
      if (Clock::now() - all_dead_at > std::chrono::seconds(2)) break;
    }
  }
  for (auto& w : ws)
    for (Stream* s : {&w.out, &w.err})
      if (s->fd >= 0) {
        emit(*s, o.prefix_output ? str("[rank ", w.rank, "] ") : "", nullptr, 0, true);
        ::close(s->fd);
      }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGCHLD, &old_chld, nullptr);
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
  g_signal_pipe[0] = g_signal_pipe[1] = -1;

  if (interrupted_by != 0) {
    res.exit_code = 128 + interrupted_by;
    res.message = str("interrupted by ", signal_name(interrupted_by), "; forwarded it to the ", o.nproc, " worker(s)");
  } else if (res.failed_rank >= 0) {
    res.exit_code = 1;
    res.message += str("; stopped the other ", o.nproc - 1, " rank(s)");
  }
  return res;
}

}  // namespace grpo::dist
