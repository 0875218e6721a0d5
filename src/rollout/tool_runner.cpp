#include "tool_runner.h"

#include <algorithm>
#include <exception>

namespace grpo::rollout {

ToolRunner::~ToolRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    jobs_.clear();  // calls not started yet are dropped; a generate() that throws leaves them behind
  }
  cv_job_.notify_all();
  for (auto& t : threads_) t.join();
  exec_->release();
}

int64_t ToolRunner::submit(ToolCall call, After after) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t ticket = next_++;
  jobs_.push_back({ticket, std::move(call), std::move(after)});
  if (static_cast<int>(threads_.size()) < workers_)
    threads_.emplace_back([this] { work(); });
  cv_job_.notify_one();
  return ticket;
}

void ToolRunner::work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_job_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    Done d;
    d.started = Clock::now();
    try {
      d.result = exec_->run(job.call);
    } catch (const std::exception& e) {  // an executor's own failure costs the call, not the rollout
      d.result.outcome = ToolOutcome::ERROR;
      d.result.body = std::string("ToolError: ") + e.what();
    }
    d.ready = Clock::now();
    if (job.after) {
      try {
        d.side = job.after(d.result);
      } catch (const std::exception&) {  // the engine then prefills the result itself
        d.side.reset();
      }
    }
    d.prepared = job.after ? Clock::now() : d.ready;
    lock.lock();
    done_.emplace(job.ticket, std::move(d));
    cv_done_.notify_all();
  }
}

bool ToolRunner::ready(int64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  return done_.count(ticket) > 0;
}

ToolRunner::Done ToolRunner::take(int64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return done_.count(ticket) > 0; });
  auto it = done_.find(ticket);
  Done r = std::move(it->second);
  done_.erase(it);
  return r;
}

void ToolRunner::wait_any(const std::vector<int64_t>& tickets) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] {
    return std::any_of(tickets.begin(), tickets.end(), [&](int64_t t) { return done_.count(t) > 0; });
  });
}

}  // namespace grpo::rollout
