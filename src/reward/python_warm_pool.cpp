// PythonWarmPool (python_warm_pool.h): sandbox runs of a bootstrap that waits on stdin, started by
// a background thread with the launcher of sandbox_run.cpp, and driven to their end by the pipe
// pump with a wall-clock limit the host counts from the hand-over of the source.
#include "grpo/reward/python_warm_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "grpo/util/error.h"
#include "grpo/util/log.h"
#include "sandbox_run.h"

namespace grpo::reward {

using namespace sandbox_detail;

namespace {

constexpr double kLifetimeS = 1e6;  // init's own wall limit: the host limits each program instead

// The interpreter's program (`python3 -B -c`): reads the call's source from stdin (the host then
// closes it, so the program sees an empty stdin as a cold run does), writes it to main.py (source
// lines in tracebacks, __file__ readable) and runs it as __main__ the way `python3 -B main.py`
// would: the bootstrap's names are removed from __main__, __file__ / sys.argv[0] / sys.path[0] are
// the script's, and an uncaught exception's traceback starts at main.py (the bootstrap's two frames
// are dropped; a SyntaxError prints as the interpreter prints it for a script).
// A program that ends without an exception leaves through os._exit(0) once the steps of a normal
// exit that a program sees have run (non-daemon threads joined, atexit handlers, stdout and stderr
// flushed). The rest of a normal exit frees the whole interpreter: measured outside the sandbox on
// the 2-core host (load ~2), hand-over of print(1) -> process gone 7.0-7.6 ms median, 1.0-1.1 ms
// with the short exit, and that time was in every tool call's path (start -> tokens injected).
// What it skips: finalizers a normal exit runs as it clears the modules (e.g. __del__ of an object
// put in sys.modules). An exception (SystemExit included), or a failure of those steps, leaves the
// normal way, so exit codes and messages stay a cold run's.
constexpr const char* kBootstrap = R"PY(import sys
def _grpo_main(sys=sys):
    path = '/tmp/main.py'
    src = sys.stdin.buffer.read()
    with open(path, 'wb') as f:
        f.write(src)
    g = sys.modules['__main__'].__dict__
    del g['sys'], g['_grpo_main']
    g['__file__'] = path
    g['__cached__'] = None
    sys.argv[0] = 'main.py'
    sys.path[0] = '/tmp'
    hook = sys.excepthook
    def excepthook(t, v, tb):
        while tb is not None and tb.tb_frame.f_code.co_filename != path:
            tb = tb.tb_next
        if isinstance(v, BaseException):
            v = v.with_traceback(tb)  # what the interpreter prints
        hook(t, v, tb)
    sys.excepthook = excepthook
    exec(compile(src, path, 'exec'), g)
    try:
        threading = sys.modules.get('threading')
        if threading is not None:
            threading._shutdown()
        import atexit, os
        atexit._run_exitfuncs()
        for f in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if f is not None:
                f.flush()
    except BaseException:
        return
    os._exit(0)
_grpo_main()
)PY";

using Runs = std::deque<std::unique_ptr<LiveRun>>;

// Kills every run's init (its PID namespace dies with it), then waits for each.
void kill_and_wait(Runs& runs) {
  for (auto& r : runs)
    if (r->init && !r->init->reaped()) kill(r->init->pid, SIGKILL);
  for (auto& r : runs)
    if (r->init) r->init->kill_and_reap();
  runs.clear();
}

// Waits (at most kPaceS) until the interpreter under sandbox init `init_pid` blocks on its stdin:
// init's child (the python) sleeps, or is gone. The filler then starts the next one, so that
// interpreters start one after another: started together, a burst of them (a pool refilled after
// a burst of calls, or filled at prepare()) takes every core from the decode and the calls.
constexpr double kPaceS = 0.25;
template <class Abort>
void wait_until_waiting(pid_t init_pid, Abort abort) {
  const int64_t until = now_ns() + static_cast<int64_t>(kPaceS * 1e9);
  const std::string children = str("/proc/", init_pid, "/task/", init_pid, "/children");
  while (now_ns() < until && !abort()) {
    FILE* f = std::fopen(children.c_str(), "r");
    if (!f) return;  // init is gone
    long child = 0;
    const bool has = std::fscanf(f, "%ld", &child) == 1;
    std::fclose(f);
    if (has) {
      FILE* st = std::fopen(str("/proc/", child, "/stat").c_str(), "r");
      if (!st) return;
      char buf[512] = {0};
      const size_t n = std::fread(buf, 1, sizeof(buf) - 1, st);
      std::fclose(st);
      const char* paren = std::strrchr(buf, ')');  // "pid (comm) S ...": comm may hold spaces
      if (n == 0 || !paren || paren[1] == 0 || paren[2] == 'Z') return;
      // Sleeping once exec'd (init's fork waits for its setup under init's name).
      if (paren[2] == 'S' && !std::strstr(buf, "(grpo-sandbox")) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// An idle interpreter is usable while its init runs and its program has neither ended (stdout and
// stderr hang up when it does) nor written anything (the bootstrap is silent until it has a source).
bool healthy(LiveRun& r) {
  if (!r.init || r.init->reaped()) return false;
  siginfo_t si{};
  if (waitid(P_PID, static_cast<id_t>(r.init->pid), &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != 0)
    return false;
  pollfd p[2] = {{r.pipes.stages[0].out_r.fd, POLLIN, 0}, {r.pipes.stages[0].err_r.fd, POLLIN, 0}};
  return poll(p, 2, 0) == 0;
}

}  // namespace

struct PythonWarmPool::State {
  const Sandbox* sandbox = nullptr;
  Sandbox::Impl* impl = nullptr;
  std::vector<std::string> args;
  StageSpec spec;  // the interpreter's stage; stdin_data is set per run
  bool available = false;

  std::mutex mu;
  std::condition_variable cv;
  Runs idle;
  int target = 0, starting = 0;
  int running = 0;  // calls in run() (pre-started or cold)
  int64_t starts = 0;
  bool stop = false, broken = false;
  std::thread filler;

  std::unique_ptr<LiveRun> start_one(std::string& err) {
    auto r = std::make_unique<LiveRun>();
    err = start_live_run(impl->host, sandbox->config(), sandbox->isolation(), {}, spec, *r);
    if (!err.empty()) return nullptr;
    return r;
  }

  // Whether the filler starts one now: fewer than `target` are idle or starting, and no call runs
  // (or none is left for the next call). An interpreter's start is ~15 ms of CPU, twice a short
  // program's run: started while a call runs, it takes the core that call runs on (on a 2-core
  // host the engine's decode holds the other), so a replacement waits for the call to end instead.
  bool wants_start() const {
    const int have = static_cast<int>(idle.size()) + starting;
    return have < target && (running == 0 || have == 0);
  }

  // The background thread: starts interpreters while wants_start().
  void fill() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stop || (!broken && wants_start()); });
      if (stop) return;
      ++starting;
      lock.unlock();
      std::string err;
      std::unique_ptr<LiveRun> r = start_one(err);
      lock.lock();
      if (r) ++starts;
      if (!r) {
        broken = true;  // run() goes on with cold starts, which report the failure per call
        log::warn_once("sandbox.warm_pool", str("sandbox: could not pre-start a python interpreter (", err,
                                                "); tool calls start their own"));
      } else if (stop || static_cast<int>(idle.size()) >= target) {
        Runs extra;
        extra.push_back(std::move(r));
        lock.unlock();
        kill_and_wait(extra);
        lock.lock();
      } else {
        const pid_t pid = r->init->pid;
        idle.push_back(std::move(r));  // usable at once: a call handed over now waits less than a cold start
        --starting;
        cv.notify_all();
        lock.unlock();
        wait_until_waiting(pid, [&] {
          std::lock_guard<std::mutex> l(mu);
          return stop || target == 0;
        });
        lock.lock();
        continue;
      }
      --starting;
      cv.notify_all();
    }
  }

  // The oldest healthy idle interpreter (the others are discarded), or null.
  std::unique_ptr<LiveRun> take() {
    Runs dead;
    std::unique_ptr<LiveRun> got;
    {
      std::lock_guard<std::mutex> lock(mu);
      while (!got && !idle.empty()) {
        std::unique_ptr<LiveRun> r = std::move(idle.front());
        idle.pop_front();
        if (healthy(*r)) got = std::move(r);
        else dead.push_back(std::move(r));
      }
    }
    cv.notify_all();  // the filler replaces what was taken (once the call ends: wants_start())
    dead.clear();     // killed, reaped in the background
    return got;
  }

  // Counts a call in run() from before it takes an interpreter until it ends.
  struct Running {
    State& s;
    explicit Running(State& st) : s(st) {
      std::lock_guard<std::mutex> lock(s.mu);
      ++s.running;
    }
    ~Running() {
      {
        std::lock_guard<std::mutex> lock(s.mu);
        --s.running;
      }
      s.cv.notify_all();  // the filler may start replacements now
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;
  };

  // Hands `source` to the interpreter and pumps its pipes until the run ends or its wall-clock
  // limit, counted from now, runs out.
  SandboxResult drive(LiveRun& r, const std::string& source) {
    const config::SandboxConfig& cfg = sandbox->config();
    std::vector<StageSpec> specs{spec};
    specs[0].stdin_data = &source;
    RunReport report;
    report.stages.resize(1);
    SigpipeGuard sigpipe;
    const int64_t t0 = now_ns();
    pump_pipes(report, specs, r.pipes, *r.init, cfg.max_output_bytes,
               t0 + static_cast<int64_t>(std::min(cfg.wall_time_s, kLifetimeS) * 1e9));
    const int64_t t1 = now_ns();
    if (!r.init->reaped()) r.init->hand_to_reaper();
    SandboxResult res;
    if (!report.error.empty()) {
      res.status = SandboxStatus::SANDBOX_ERROR;
      res.error = report.error;
    } else {
      res = to_result(report.stages[0], specs[0], "run");
    }
    res.wall_s = double(t1 - t0) * 1e-9;  // from the hand-over, not from the interpreter's start
    if (res.status == SandboxStatus::SANDBOX_ERROR) {
      impl->errors += 1;
      log::warn_once(str("sandbox.error.", res.error.substr(0, 40)), str("sandbox: ", res.error));
    }
    return res;
  }
};

PythonWarmPool::PythonWarmPool(const Sandbox& sandbox, std::vector<std::string> args) : st_(std::make_unique<State>()) {
  State& s = *st_;
  s.sandbox = &sandbox;
  s.impl = sandbox.impl_.get();
  s.args = std::move(args);
  const config::SandboxConfig& cfg = sandbox.config();
  s.available = sandbox.isolation().pid_ns && !s.impl->python_path.empty();
  StageSpec& sp = s.spec;
  sp.path = s.impl->python_path;
  sp.argv = {"python3", "-B", "-c", kBootstrap};
  for (const auto& a : s.args) sp.argv.push_back(a);
  sp.wall_s = kLifetimeS;
  sp.cpu_s = cfg.cpu_time_s;
  sp.memory_bytes = int64_t(cfg.memory_mb) << 20;
  sp.max_processes = cfg.max_processes;
  sp.file_size_bytes = int64_t(cfg.max_file_size_mb) << 20;
  sp.open_files = cfg.max_open_files;
}

PythonWarmPool::~PythonWarmPool() {
  {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->stop = true;
  }
  st_->cv.notify_all();
  if (st_->filler.joinable()) st_->filler.join();
  kill_and_wait(st_->idle);
}

bool PythonWarmPool::available() const { return st_->available; }

void PythonWarmPool::set_idle_target(int n) {
  State& s = *st_;
  if (!s.available) return;
  Runs gone;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    s.target = std::max(0, n);
    if (s.target > 0 && !s.filler.joinable()) s.filler = std::thread([&s] { s.fill(); });
    while (static_cast<int>(s.idle.size()) > s.target) {
      gone.push_back(std::move(s.idle.back()));
      s.idle.pop_back();
    }
    s.cv.notify_all();
    if (s.target == 0) s.cv.wait(lock, [&] { return s.starting == 0; });  // a start in flight is killed by the filler
  }
  kill_and_wait(gone);
}

SandboxResult PythonWarmPool::run(const std::string& source, bool* prestarted) {
  State& s = *st_;
  const State::Running running(s);
  std::unique_ptr<LiveRun> warm = s.available ? s.take() : nullptr;
  if (prestarted) *prestarted = warm != nullptr;
  if (warm) return s.drive(*warm, source);
  SandboxRequest req;
  req.language = config::CodeLanguage::PYTHON;
  req.source = source;
  req.args = s.args;
  return s.sandbox->run(req);
}

int64_t PythonWarmPool::starts() const {
  std::lock_guard<std::mutex> lock(st_->mu);
  return st_->starts;
}

std::vector<int> PythonWarmPool::idle_init_pids() const {
  std::lock_guard<std::mutex> lock(st_->mu);
  std::vector<int> out;
  for (const auto& r : st_->idle)
    if (r->init) out.push_back(r->init->pid);
  return out;
}

}  // namespace grpo::reward
