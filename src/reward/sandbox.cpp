// Sandbox, the public side: finding the tools and grpo-sandbox-init, probing what isolation the
// kernel allows (and dropping what it refuses), turning a request into stages and each stage's
// report into a SandboxResult. One run's process machinery (the plan builder, the launcher, the
// pipe pump) is in sandbox_run.h; the init process itself in sandbox_init.h.
#include "grpo/reward/sandbox.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "sandbox_seccomp.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"
#include "sandbox_run.h"

namespace grpo::reward {

using namespace sandbox_detail;

namespace sandbox_detail {

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

}  // namespace sandbox_detail

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

bool mentions_memory_exhaustion(const std::string& err) {
  for (const char* needle : {"MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory",
                             "memory exhausted"})
    if (err.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

SandboxResult sandbox_detail::to_result(const StageReport& so, const StageSpec& spec, const char* stage_name) {
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

namespace {

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

// The top of the view: merged-/usr symlinks are recreated, real directories bound read-only.
void find_view_top(RunHost& host) {
  for (const char* name : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    std::string path = str("/", name);
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
      if (n > 0) host.top_symlinks.emplace_back(name, std::string(target, static_cast<size_t>(n)));
    } else if (S_ISDIR(st.st_mode)) {
      host.top_binds.push_back(name);
    }
  }
  host.top_binds.push_back("usr");
  host.top_binds.push_back("etc");
}

// Drops from `iso` (or `host`) what the probe's failure `raw` says the kernel refused; throws when
// nothing is left to drop.
void drop_refused(const RunReport& raw, RunHost& host, SandboxIsolation& iso) {
  std::string why = !raw.error.empty() ? raw.error
                    : raw.stages[0].child_error_step
                        ? str(step_name(raw.stages[0].child_error_step), ": ", std::strerror(raw.stages[0].child_error_errno))
                        : "the probe program failed";
  auto drop = [&](bool& flag, const char* key, const char* what) {
    flag = false;
    log::warn_once(str("sandbox.", key), str("sandbox: the kernel refused ", what, " (", why, "); running without it"));
  };
  if (raw.setup_step == kSetupExecInit && !host.init_exe.empty()) {
    log::warn_once("sandbox.init", str("sandbox: ", why, "; each run's init is a fork of this process instead"));
    host.init_exe.clear();
  } else if (raw.stages[0].child_error_step == STEP_CHILD_SECCOMP && iso.seccomp) {
    drop(iso.seccomp, "seccomp", "the seccomp filter");
  } else if (raw.setup_step == STEP_PROC && iso.proc) {
    drop(iso.proc, "proc", "a private /proc");
  } else if ((raw.setup_step == -1 || raw.setup_errno == EPERM || raw.setup_errno == EINVAL ||
              raw.setup_errno == ENOSPC || raw.setup_errno == EUSERS) && iso.user_ns) {
    drop(iso.user_ns, "user_ns", "a user namespace");
  } else if (raw.setup_errno != 0 && raw.setup_step == 0 && (iso.net_ns || iso.ipc_ns || iso.uts_ns)) {
    iso.net_ns = iso.ipc_ns = iso.uts_ns = false;
    log::warn_once("sandbox.net_ns", str("sandbox: the kernel refused network/IPC/UTS namespaces (", why,
                                         "); programs can reach the host network"));
  } else if (raw.setup_errno != 0 && raw.setup_step == 0 && iso.pid_ns) {
    drop(iso.pid_ns, "pid_ns", "a PID namespace; runs are killed by session and may leave daemons");
  } else {
    throw InputError(str("sandbox: cannot set up even the minimal sandbox (mount namespace, read-only view): ", why));
  }
}

// Probe: run /bin/true (or the first binary we find) with everything on; drop what fails.
void probe_isolation(RunHost& host, const config::SandboxConfig& cfg, SandboxIsolation& iso) {
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
    RunReport raw = run_stages(host, cfg, iso, {}, {spec});
    if (raw.error.empty() && raw.stages[0].ended && raw.stages[0].child_error_step == 0 &&
        WIFEXITED(raw.stages[0].wait_status) && WEXITSTATUS(raw.stages[0].wait_status) == 0)
      break;
    drop_refused(raw, host, iso);
  }
}

// The stages of one request: a compile stage for C++, then one run per stdin. The specs point
// into `stdins`.
std::vector<StageSpec> make_specs(const config::SandboxConfig& cfg, const SandboxRequest& req, const std::string& tool,
                                  const std::vector<std::string>& stdins) {
  const bool cpp = req.language == config::CodeLanguage::CPP;
  const int64_t mib = 1 << 20;
  std::vector<StageSpec> specs;
  if (cpp) {
    StageSpec c;
    c.path = tool;
    c.argv = {"g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp"};
    c.wall_s = cfg.compile_wall_time_s;
    c.cpu_s = cfg.compile_cpu_time_s;
    c.memory_bytes = int64_t(cfg.compile_memory_mb) * mib;
    c.max_processes = std::max(cfg.max_processes, 16);
    c.file_size_bytes = int64_t(std::max(cfg.max_file_size_mb, 64)) * mib;
    c.open_files = std::max(cfg.max_open_files, 256);
    c.stop_on_failure = true;
    specs.push_back(c);
  }
  for (const auto& in : stdins) {
    StageSpec s;
    s.path = cpp ? "/tmp/main" : tool;
    s.argv = cpp ? std::vector<std::string>{"./main"} : std::vector<std::string>{"python3", "-B", "main.py"};
    for (const auto& a : req.args) s.argv.push_back(a);
    s.stdin_data = &in;
    s.wall_s = cfg.wall_time_s;
    s.cpu_s = cfg.cpu_time_s;
    s.memory_bytes = int64_t(cfg.memory_mb) * mib;
    s.max_processes = cfg.max_processes;
    s.file_size_bytes = int64_t(cfg.max_file_size_mb) * mib;
    s.open_files = cfg.max_open_files;
    specs.push_back(s);
  }
  return specs;
}

}  // namespace

Sandbox::Sandbox(const config::SandboxConfig& cfg) : cfg_(cfg), impl_(std::make_unique<Impl>()) {
  impl_->python_path = find_on_sandbox_path(cfg.python);
  impl_->cxx_path = find_on_sandbox_path(cfg.cxx);
  find_view_top(impl_->host);
  try {
    impl_->host.bpf = build_seccomp_filter();
  } catch (const std::exception& e) {
    iso_.seccomp = false;
    log::warn_once("sandbox.seccomp", str("sandbox: no seccomp filter (", e.what(), "); programs run without it"));
  }

  impl_->host.init_exe = find_init_exe();
  if (impl_->host.init_exe.empty())
    log::warn_once("sandbox.init", "sandbox: grpo-sandbox-init not found (beside this executable, at its build path, "
                                   "or in $GRPO_SANDBOX_INIT): each run's init is a fork of this process, which is "
                                   "slower and makes peak_memory_bytes include this process's memory");
  probe_isolation(impl_->host, cfg_, iso_);
  if (iso_.net_ns) impl_->host.netns.start(static_cast<size_t>(std::max(2, 2 * cfg_.num_workers)));
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
  const std::vector<StageSpec> specs = make_specs(cfg_, req, tool, stdins);

  RunReport raw = run_stages(impl_->host, cfg_, iso_, files, specs);
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
