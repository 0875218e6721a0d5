// SandboxSession (sandbox_session.h): a sandbox run of one long-lived stage, started by the
// launcher of sandbox_run.cpp, whose pipes this file drives itself, one request at a time.
#include "sandbox_session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "grpo/util/error.h"
#include "sandbox_run.h"

namespace grpo::reward {

using namespace sandbox_detail;

namespace {

constexpr size_t kStderrTail = 4096;
constexpr int64_t kFloodBytes = 64LL << 20;  // stderr per request before the program is stopped
constexpr double kLifetimeS = 1e6;           // init's own wall limit: the host limits each request

std::string describe_end(const Record& r) {
  if (r.kind == REC_SETUP_ERROR) return str("the sandbox setup failed at ", step_name(r.step), ": ", std::strerror(r.err));
  if (r.kind == REC_CHILD_ERROR)
    return str("the worker could not start (", step_name(r.step), ": ", std::strerror(r.err), ")");
  const int st = r.wait_status;
  if (WIFEXITED(st)) return str("the worker exited with code ", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) {
    const int sig = WTERMSIG(st);
    if (sig == SIGXCPU) return "the worker ran out of CPU time";
    return str("the worker was killed by signal ", sig, " (", strsignal(sig), ")");
  }
  return "the worker ended";
}

}  // namespace

struct SandboxSession::State {
  LiveRun run;
  std::string err_tail;
  std::string status_buf;
  std::string ended;  // why the program is gone; "" while it runs

  void stop(const std::string& why) {
    if (ended.empty()) ended = why.empty() ? "stopped" : why;
    run.init.reset();  // SIGKILL to init: the PID namespace and all in it die; reaped in the background
  }
  void on_stderr(const char* d, size_t n) {
    err_tail.append(d, n);
    if (err_tail.size() > 2 * kStderrTail) err_tail.erase(0, err_tail.size() - kStderrTail);
  }
  // The program closed its stdout: most likely it ended. Init's record says how (until `deadline`).
  std::string wait_for_end(int64_t deadline) {
    while (run.pipes.status_r.fd >= 0) {
      int64_t left = deadline - now_ns();
      if (left <= 0) break;
      pollfd p{run.pipes.status_r.fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left / 1'000'000 + 1)) <= 0) continue;
      std::string why = on_status();
      if (!why.empty()) return why;
    }
    return "the worker closed its reply pipe (it exited or was killed)";
  }
  // Reads init's records; "" while the program runs, else why it ended.
  std::string on_status() {
    char buf[512];
    ssize_t n = read(run.pipes.status_r.fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return "";
    if (n <= 0) {
      run.pipes.status_r.reset();
      return "the worker's sandbox ended";
    }
    status_buf.append(buf, static_cast<size_t>(n));
    while (status_buf.size() >= sizeof(Record)) {
      Record r;
      std::memcpy(&r, status_buf.data(), sizeof r);
      status_buf.erase(0, sizeof r);
      if (r.kind != REC_START) return describe_end(r);
    }
    return "";
  }
};

SandboxSession::SandboxSession(const Sandbox& sandbox, const std::string& interpreter, const std::string& script,
                               const std::vector<SandboxFile>& files, const std::vector<std::string>& args,
                               const SessionLimits& limits)
    : st_(std::make_unique<State>()) {
  const std::string path = find_on_sandbox_path(interpreter);
  GRPO_REQUIRE(!path.empty(), "python interpreter '", interpreter, "' was not found in the sandbox: give a name on ",
               kSandboxPath, " or an absolute path under /usr (the sandbox sees only /usr, /bin and /etc)");
  for (const auto& f : files)
    GRPO_REQUIRE(!f.name.empty() && f.name != "main.py" && f.name.find('/') == std::string::npos,
                 "sandbox session: invalid or reserved file name '", f.name, "'");
  std::vector<SandboxFile> all = files;
  all.push_back({"main.py", script});
  const config::SandboxConfig& cfg = sandbox.config();
  StageSpec spec;
  spec.path = path;
  // argv[0] is the path as given, so that a venv's interpreter finds its pyvenv.cfg.
  spec.argv = {path, "-B", "-u", "main.py"};
  for (const auto& a : args) spec.argv.push_back(a);
  spec.wall_s = kLifetimeS;
  spec.cpu_s = kLifetimeS;
  spec.memory_bytes = limits.memory_bytes;
  spec.max_processes = limits.max_processes;
  spec.file_size_bytes = int64_t(cfg.max_file_size_mb) << 20;
  spec.open_files = limits.open_files;
  std::string err = start_live_run(sandbox.impl_->host, cfg, sandbox.isolation(), all, spec, st_->run);
  if (!err.empty()) throw InputError(str("sandbox session: ", err));
  for (Fd* fd : {&st_->run.pipes.stages[0].in_w, &st_->run.pipes.stages[0].out_r, &st_->run.pipes.stages[0].err_r,
                 &st_->run.pipes.status_r})
    fcntl(fd->fd, F_SETFL, O_NONBLOCK);
}

SandboxSession::~SandboxSession() { st_->stop(""); }

bool SandboxSession::alive() const { return st_->ended.empty(); }
std::string SandboxSession::stderr_tail() const {
  const std::string& t = st_->err_tail;
  return t.size() > kStderrTail ? t.substr(t.size() - kStderrTail) : t;
}
int SandboxSession::init_pid() const { return st_->run.init ? st_->run.init->pid : -1; }

SessionReply SandboxSession::request(const std::string& request, double timeout_s, int64_t max_reply_bytes) {
  SessionReply rep;
  State& s = *st_;
  if (!s.ended.empty()) {
    rep.error = s.ended;
    return rep;
  }
  sandbox_detail::SigpipeGuard sigpipe;
  RunPipes::Stage& io = s.run.pipes.stages[0];
  const std::string data = request + "\n";
  size_t written = 0;
  std::string out;
  int64_t err_bytes = 0;
  const int64_t deadline = now_ns() + static_cast<int64_t>(timeout_s * 1e9);
  auto fail = [&](const std::string& why) {
    s.stop(why);
    rep.error = why;
    return rep;
  };
  std::vector<char> buf(1 << 16);
  for (;;) {
    const int64_t left = deadline - now_ns();
    if (left <= 0) return fail(str("no reply within ", timeout_s, " s (timeout_s); the worker was killed"));
    pollfd p[4];
    int n = 0;
    p[n++] = {io.out_r.fd, POLLIN, 0};
    p[n++] = {io.err_r.fd, POLLIN, 0};
    if (s.run.pipes.status_r.fd >= 0) p[n++] = {s.run.pipes.status_r.fd, POLLIN, 0};
    if (written < data.size() && io.in_w.fd >= 0) p[n++] = {io.in_w.fd, POLLOUT, 0};
    int rc = poll(p, static_cast<nfds_t>(n), static_cast<int>(std::min<int64_t>(left / 1'000'000 + 1, 1000)));
    if (rc < 0 && errno != EINTR) return fail(str("poll failed: ", std::strerror(errno)));
    if (rc <= 0) continue;
    for (int k = 0; k < n; ++k) {
      if (p[k].revents == 0) continue;
      const int fd = p[k].fd;
      if (fd == io.in_w.fd) {
        ssize_t w = write(fd, data.data() + written, data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) io.in_w.reset();  // reader gone: its end follows
        continue;
      }
      if (fd == s.run.pipes.status_r.fd) {
        std::string why = s.on_status();
        if (!why.empty()) return fail(why);
        continue;
      }
      ssize_t r = read(fd, buf.data(), buf.size());
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (fd == io.out_r.fd) {
        if (r <= 0) return fail(s.wait_for_end(now_ns() + 1'000'000'000LL));
        out.append(buf.data(), static_cast<size_t>(r));
        size_t nl = out.find('\n');
        if (nl != std::string::npos) {
          rep.ok = true;
          rep.line = out.substr(0, nl);
          return rep;
        }
        if (static_cast<int64_t>(out.size()) > max_reply_bytes)
          return fail(str("the reply exceeded ", max_reply_bytes, " bytes; the worker was killed"));
      } else {
        if (r <= 0) {
          io.err_r.reset();  // stdout or the status pipe tells how it ended
          continue;
        }
        s.on_stderr(buf.data(), static_cast<size_t>(r));
        err_bytes += r;
        if (err_bytes > kFloodBytes)
          return fail(str("the worker printed more than ", kFloodBytes >> 20, " MiB in one batch; it was killed"));
      }
    }
  }
}

}  // namespace grpo::reward
