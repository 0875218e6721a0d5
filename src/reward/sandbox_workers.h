#pragma once
// Internal to the sandbox (not a public header): the two background threads a Sandbox keeps beside
// its runs. Both exist to take kernel waits off the path of a run: creating a network namespace
// and reaping an init whose namespaces are being torn down each wait milliseconds in the kernel.
#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace grpo::reward::sandbox_detail {

/// Fresh, empty network namespaces made ahead of time by a background thread. Each is used by
/// exactly one run.
class NetnsStock {
 public:
  NetnsStock() = default;
  NetnsStock(const NetnsStock&) = delete;
  NetnsStock& operator=(const NetnsStock&) = delete;
  ~NetnsStock();

  /// Starts the thread that keeps `target` namespaces in stock.
  void start(size_t target);
  /// A namespace descriptor (the caller closes it), or -1 when the stock is empty.
  int take();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> fds_;
  bool stop_ = false;
  std::thread th_;
};

/// Reaps finished inits in the background, so that a run returns as soon as it has reported.
class Reaper {
 public:
  Reaper() = default;
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;
  /// Waits for every init handed over so far.
  ~Reaper();

  /// Reaps `pid`; `keep` (the run's Plan, whose memory init runs in) is released only once init
  /// is reaped. The thread starts on first use.
  void reap(pid_t pid, std::shared_ptr<const void> keep);

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<pid_t, std::shared_ptr<const void>>> pids_;
  bool stop_ = false;
  std::thread th_;
};

}  // namespace grpo::reward::sandbox_detail
