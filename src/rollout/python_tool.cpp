// The sandbox-backed `python` tool (tools.h): one fresh sandbox run per call (in an interpreter
// pre-started between prepare() and release()), its outcome turned into the text the model sees.
#include <algorithm>
#include <mutex>
#include <string>

#include "grpo/reward/python_warm_pool.h"
#include "grpo/reward/sandbox.h"
#include "grpo/rollout/tools.h"

namespace grpo::rollout {

namespace {

// The last `n` bytes of s, starting on a UTF-8 character boundary (a traceback ends with the error).
std::string tail(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t from = s.size() - n;
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
  return "..." + s.substr(from);
}

// The first `n` bytes of s, ending on a UTF-8 character boundary (the injected text stays valid
// UTF-8, so the transcript re-tokenises to the ids kept).
std::string head(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t to = n;
  while (to > 0 && (static_cast<unsigned char>(s[to]) & 0xC0) == 0x80) --to;
  return s.substr(0, to);
}

// What the sandbox captures per stream: more than the model is shown, so that the stderr tail (the
// traceback's last line) and the sandbox's memory classification, which reads stderr, survive a
// small max_output_bytes; the sandbox keeps the head of a stream, we cut to max_output_bytes here.
constexpr int kCaptureBytes = 64 * 1024;

std::string join(const std::string& out, const std::string& more) {
  if (out.empty()) return more;
  return out.back() == '\n' ? out + more : out + "\n" + more;
}

class PythonTool : public ToolExecutor {
 public:
  PythonTool(const config::ToolsConfig& cfg, std::vector<std::string> args)
      : cfg_(cfg), sandbox_(sandbox_config(cfg)), pool_(sandbox_, std::move(args)) {}

  // One interpreter waiting per call that can wait at once (ToolRunner: a paused row each): a
  // burst of calls finds them started, and replacements start once calls are not running
  // (PythonWarmPool::set_idle_target).
  void prepare(int max_concurrent_calls) const override {
    std::lock_guard<std::mutex> lock(mu_);
    ++users_;
    target_ = std::max(target_, max_concurrent_calls);
    pool_.set_idle_target(target_);
  }
  void release() const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (users_ > 0 && --users_ == 0) {
      target_ = 0;
      pool_.set_idle_target(0);
    }
  }

  ToolResult run(const ToolCall& call) const override {
    ToolResult out;
    const reward::SandboxResult r = pool_.run(call.code, &out.prestarted);
    out.run_seconds = r.wall_s;
    const auto limit = static_cast<size_t>(cfg_.max_output_bytes);
    std::string body = head(r.stdout_data, limit);
    if (r.stdout_truncated || r.stdout_data.size() > limit) body = join(body, "[output truncated at " + std::to_string(cfg_.max_output_bytes) + " bytes]");
    const std::string err = tail(r.stderr_data, limit);
    using S = reward::SandboxStatus;
    switch (r.status) {
      case S::OK: break;
      case S::TIMEOUT:
        out.outcome = ToolOutcome::TIMEOUT;
        body = join(body, "TimeoutError: the program ran longer than " + seconds(cfg_.timeout_s) + " s");
        break;
      case S::OUTPUT_LIMIT:  // the flood was drained; the program may still have ended well
        if (r.exit_code != 0) out.outcome = ToolOutcome::ERROR;
        if (r.exit_code != 0 && !err.empty()) body = join(body, err);
        break;
      case S::MEMORY_LIMIT:
        out.outcome = ToolOutcome::ERROR;
        body = join(body, err.empty() ? "MemoryError: the program went past " + std::to_string(cfg_.memory_mb) + " MiB" : err);
        break;
      case S::SANDBOX_ERROR:
        out.outcome = ToolOutcome::ERROR;
        body = join(body, "SandboxError: " + r.error);
        break;
      default:  // FAILED, KILLED_BY_SIGNAL
        out.outcome = ToolOutcome::ERROR;
        body = join(body, err.empty() ? "Error: the program " + std::string(r.signal ? "was killed by signal " + std::to_string(r.signal)
                                                                                        : "exited with code " + std::to_string(r.exit_code))
                                      : err);
    }
    out.body = std::move(body);
    return out;
  }

 private:
  static config::SandboxConfig sandbox_config(const config::ToolsConfig& cfg) {
    config::SandboxConfig c;
    c.num_workers = cfg.num_workers;
    c.wall_time_s = cfg.timeout_s;
    c.cpu_time_s = cfg.timeout_s;
    c.memory_mb = cfg.memory_mb;
    c.max_output_bytes = std::max(cfg.max_output_bytes, kCaptureBytes);
    return c;
  }
  static std::string seconds(double s) {
    std::string t = std::to_string(s);
    while (t.size() > 1 && t.back() == '0') t.pop_back();
    if (!t.empty() && t.back() == '.') t.pop_back();
    return t;
  }

  config::ToolsConfig cfg_;
  reward::Sandbox sandbox_;
  mutable reward::PythonWarmPool pool_;  // thread-safe
  mutable std::mutex mu_;                // prepare() / release()
  mutable int users_ = 0, target_ = 0;
};

}  // namespace

std::unique_ptr<ToolExecutor> make_python_tool(const config::ToolsConfig& cfg, std::vector<std::string> args) {
  return std::make_unique<PythonTool>(cfg, std::move(args));
}

}  // namespace grpo::rollout
