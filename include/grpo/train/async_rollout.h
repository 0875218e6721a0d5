#pragma once
// Asynchronous rollout on one machine (grpo.async_rollout: on): a rollout thread produces the
// generation batches of the next steps on snapshots of the weights while the trainer updates them.
//
// Which weights sample generation g is a fixed rule (AsyncSchedule::version_of), never a race:
// generation g (trained at step g; num_iterations 1) is sampled by the weights after
// version_of(g) optimizer steps, at most max_staleness behind g and never older than the last
// checkpoint step. A checkpoint step b therefore trains on a generation sampled by its own weights
// (the pipeline drains there, one bubble per checkpoint.save_steps), and every generation after it
// is a function of the checkpoint's weights, seed and data position alone: a resumed run
// regenerates the in-flight generations deterministically from them (nothing of the rollout is
// saved) and continues bit for bit. The trainer waits when the generation it needs is not ready
// (slow rollout); the rollout thread waits when the weights it needs are not yet published (slow
// trainer). Both waits are timed (async/trainer_wait_s, async/rollout_wait_s).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace grpo::train {

/// The rule that assigns weight versions (optimizer steps done) to generation batches.
struct AsyncSchedule {
  int64_t max_staleness = 1;  // >= 1
  int64_t start = 0;          // the step this run started (or resumed) from
  int64_t save_every = 0;     // checkpoint.save_steps; <= 0: no periodic checkpoint
  int64_t max_steps = 0;      // generations [0, max_steps) exist

  /// The weights version that samples generation g (g >= start): max(g - max_staleness, the last
  /// checkpoint step <= g), where checkpoint steps are start + k * save_every as StageRunner::run
  /// saves them.
  int64_t version_of(int64_t g) const;
  /// True when some generation in [v, max_steps) is sampled by version v (it must be published).
  bool needed(int64_t v) const;
};

/// Seconds each side waited for the other, and the version of a finished generation.
template <class T>
struct AsyncResult {
  std::unique_ptr<T> value;
  int64_t generation = 0;
  int64_t version = 0;          // weights version that sampled it
  double rollout_wait_s = 0.0;  // the rollout thread waiting for that version to be published
  double trainer_wait_s = 0.0;  // the trainer waiting for this generation (set by take)
};

/// The rollout thread and the weight snapshots it samples from. W is one snapshot (for the GRPO
/// stage: a frozen model copy with its own rollout engine); T is one finished generation batch.
/// Thread rules: publish, take and the destructor are called from the trainer thread only;
/// produce runs on the rollout thread only, on a snapshot that no publish overwrites meanwhile.
template <class T, class W>
class AsyncRollout {
 public:
  using MakeSnapshot = std::function<std::unique_ptr<W>()>;          // a new, empty snapshot slot
  using Capture = std::function<void(W&)>;                           // the trainer's weights -> slot
  using Produce = std::function<std::unique_ptr<T>(int64_t g, W&)>;  // generation g from a snapshot
  using ThreadInit = std::function<void()>;                          // once, on the rollout thread

  AsyncRollout(AsyncSchedule schedule, MakeSnapshot make, Capture capture, Produce produce, ThreadInit init = {})
      : sched_(schedule), make_(std::move(make)), capture_(std::move(capture)), produce_(std::move(produce)) {
    thread_ = std::thread([this, init = std::move(init)] {
      if (init) init();
      loop();
    });
  }
  ~AsyncRollout() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();  // an in-flight generation finishes first
  }
  AsyncRollout(const AsyncRollout&) = delete;
  AsyncRollout& operator=(const AsyncRollout&) = delete;

  const AsyncSchedule& schedule() const { return sched_; }

  /// Trainer, before step `step` (its weights are version `step`): snapshots them when a
  /// generation needs that version, and frees the snapshots no generation >= step needs.
  void publish(int64_t step) {
    std::unique_ptr<W> slot;
    {
      std::lock_guard<std::mutex> lk(mu_);
      const int64_t oldest = sched_.version_of(step);
      for (auto it = live_.begin(); it != live_.end() && it->first < oldest;) {
        free_.push_back(std::move(it->second));
        it = live_.erase(it);
      }
      if (!sched_.needed(step) || live_.count(step)) return;
      if (!free_.empty()) {
        slot = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!slot) slot = make_();
    capture_(*slot);  // outside the lock: the rollout thread only reads live snapshots
    {
      std::lock_guard<std::mutex> lk(mu_);
      live_[step] = std::move(slot);
    }
    cv_.notify_all();
  }

  /// Trainer: generation g (the rollout thread's next ones are produced in order from `start`);
  /// blocks until it is ready. Rethrows what the rollout thread threw.
  AsyncResult<T> take(int64_t g) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return ready_.count(g) || error_; });
    if (!ready_.count(g)) std::rethrow_exception(error_);  // generations before the failed one still arrive
    AsyncResult<T> r = std::move(ready_.at(g));
    ready_.erase(g);
    r.trainer_wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

  /// Snapshots held now (live and free): at most max_staleness + 1 are ever live.
  size_t snapshots_held() const {
    std::lock_guard<std::mutex> lk(mu_);
    return live_.size() + free_.size();
  }

 private:
  void loop() {
    try {
      for (int64_t g = sched_.start; g < sched_.max_steps; ++g) {
        const int64_t v = sched_.version_of(g);
        const auto t0 = std::chrono::steady_clock::now();
        W* snap = nullptr;
        {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] { return stop_ || live_.count(v); });
          if (stop_) return;
          snap = live_.at(v).get();  // stays live until the trainer reaches step g
        }
        AsyncResult<T> r;
        r.rollout_wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.generation = g;
        r.version = v;
        r.value = produce_(g, *snap);
        {
          std::lock_guard<std::mutex> lk(mu_);
          ready_.emplace(g, std::move(r));
        }
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
    }
  }

  const AsyncSchedule sched_;
  MakeSnapshot make_;
  Capture capture_;
  Produce produce_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::unique_ptr<W>> live_;  // version -> snapshot
  std::vector<std::unique_ptr<W>> free_;        // slots to reuse
  std::map<int64_t, AsyncResult<T>> ready_;     // generation -> finished batch
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: started once every member above exists
};

}  // namespace grpo::train
