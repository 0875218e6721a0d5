#pragma once
// Internal to the rollout engine (not a public header): runs tool calls on a few threads of its own
// while the engine keeps decoding, and hands each result back by ticket. The engine decides when
// to take a result (and so which step injects it); the threads only decide when it is ready.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "grpo/rollout/tools.h"
#include "tool_prefill.h"

namespace grpo::rollout {

class ToolRunner {
 public:
  using Clock = std::chrono::steady_clock;
  /// A call's result and its timeline on the worker (for RolloutStats' per-call latencies).
  struct Done {
    ToolResult result;
    Clock::time_point started;  // a worker took the call and is about to start its sandbox (exec.run())
    Clock::time_point ready;    // exec.run() returned
    Clock::time_point prepared;  // the call's `after` returned (== ready without one): the engine may take it
    std::shared_ptr<SidePrefill> side;  // what `after` made (null without one, or when it threw)
  };
  /// Run on the worker after exec.run(), before the result is handed over (the side prefill).
  using After = std::function<std::shared_ptr<SidePrefill>(const ToolResult&)>;

  /// `exec` must outlive the runner; threads start with the first submit(). Calls
  /// exec.prepare(max_pending): the calls that may wait at once (the python tool pre-starts that
  /// many interpreters meanwhile, so that a burst of calls does not wait for interpreter starts).
  ToolRunner(const ToolExecutor& exec, int num_workers, int max_pending) : exec_(&exec), workers_(num_workers) {
    exec_->prepare(std::max(num_workers, max_pending));
  }
  /// Waits for the calls in flight (a sandbox run is tied to the thread that started it), then
  /// exec.release().
  ~ToolRunner();
  ToolRunner(const ToolRunner&) = delete;
  ToolRunner& operator=(const ToolRunner&) = delete;

  /// Queues `call`; returns its ticket. `after` (optional) runs on the worker once the call ran; if
  /// it throws, the result is handed over without what it makes.
  int64_t submit(ToolCall call, After after = nullptr);
  /// Whether the result of `ticket` is ready (not taken yet).
  bool ready(int64_t ticket);
  /// Blocks until `ticket`'s result is ready, removes and returns it.
  Done take(int64_t ticket);
  /// Blocks until at least one of `tickets` is ready.
  void wait_any(const std::vector<int64_t>& tickets);

 private:
  void work();

  const ToolExecutor* exec_;
  int workers_;
  std::mutex mu_;
  std::condition_variable cv_job_, cv_done_;
  struct Job {
    int64_t ticket;
    ToolCall call;
    After after;
  };
  std::deque<Job> jobs_;
  std::map<int64_t, Done> done_;
  std::vector<std::thread> threads_;
  int64_t next_ = 0;
  bool stop_ = false;
};

}  // namespace grpo::rollout
