#include "grpo/reward/sandbox_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

namespace grpo::reward {

SandboxPool::SandboxPool(const Sandbox& sandbox, int num_workers)
    : sandbox_(sandbox), workers_(num_workers > 0 ? num_workers : std::max(1, sandbox.config().num_workers)) {}

std::vector<std::vector<SandboxResult>> SandboxPool::run_batch(const std::vector<SandboxJob>& jobs) const {
  std::vector<std::vector<SandboxResult>> out(jobs.size());
  std::atomic<size_t> next{0};
  std::exception_ptr first_error;
  std::mutex mu;
  // Each worker thread stays alive while its run is in flight: the run's init is tied to the
  // thread that cloned it (PR_SET_PDEATHSIG), so no run outlives its worker.
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < jobs.size();) {
      try {
        out[i] = sandbox_.run_each(jobs[i].request, jobs[i].stdins);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error) first_error = std::current_exception();
      }
    }
  };
  const size_t n = std::min<size_t>(static_cast<size_t>(workers_), jobs.size());
  if (n <= 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (size_t t = 0; t < n; ++t) threads.emplace_back(work);
    for (auto& t : threads) t.join();
  }
  if (first_error) std::rethrow_exception(first_error);
  return out;
}

}  // namespace grpo::reward
