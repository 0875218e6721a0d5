#include "sandbox_workers.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grpo::reward::sandbox_detail {

void NetnsStock::start(size_t target) {
  th_ = std::thread([this, target] {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || fds_.size() < target; });
        if (stop_) return;
      }
      // unshare() moves only this thread into the new namespace; it never leaves it.
      if (unshare(CLONE_NEWNET) != 0) return;
      int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
    }
  });
}

int NetnsStock::take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fds_.empty()) return -1;
  int fd = fds_.front();
  fds_.pop_front();
  cv_.notify_one();
  return fd;
}

NetnsStock::~NetnsStock() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (th_.joinable()) th_.join();
  for (int fd : fds_) close(fd);
}

void Reaper::reap(pid_t pid, std::shared_ptr<const void> keep) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!th_.joinable()) th_ = std::thread([this] { loop(); });
    pids_.emplace_back(pid, std::move(keep));
  }
  cv_.notify_one();
}

void Reaper::loop() {
  for (;;) {
    std::pair<pid_t, std::shared_ptr<const void>> item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !pids_.empty(); });
      if (pids_.empty()) return;  // stop requested and nothing left
      item = std::move(pids_.front());
      pids_.pop_front();
    }
    while (waitpid(item.first, nullptr, 0) < 0 && errno == EINTR) {
    }
    item.second.reset();
  }
}

Reaper::~Reaper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (th_.joinable()) th_.join();
}

}  // namespace grpo::reward::sandbox_detail
