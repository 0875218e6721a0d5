#pragma once
// Live and peak bytes of the CPU tensors this thread allocates, counted by LibTorch's own CPU
// allocator: while a CpuAllocCounter is installed, c10's DefaultCPUAllocator reports every
// allocation and free to it (the hook torch.profiler's profile_memory uses). So a test can count
// resident bytes independently of what the code under test says it holds. Frees of blocks
// allocated before the counter was installed are not reported (c10 does not know their size).
//
// `live`/`peak` count this thread's reports (and those of threads LibTorch hands its thread-local
// state to). A buffer freed on another thread (a Gloo worker dropping the last reference to a
// finished collective's tensor) is not reported there, so for such code use global_live(): the
// installed counter also turns on c10's caffe2_report_cpu_memory_usage, which makes the allocator
// keep an exact total over all threads.
#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <algorithm>
#include <cstdint>
#include <memory>

namespace grpo::testing {

struct CpuAllocStats : c10::MemoryReportingInfoBase {
  int64_t live = 0;  // bytes allocated and not yet freed since installation
  int64_t peak = 0;  // the largest `live` since installation or the last reset_peak()
  int64_t total = 0;  // the allocator's total over all threads at the last report
  void reportMemoryUsage(void*, int64_t alloc_size, size_t total_allocated, size_t, c10::Device device) override {
    if (!device.is_cpu()) return;
    live += alloc_size;
    peak = std::max(peak, live);
    total = static_cast<int64_t>(total_allocated);
  }
  bool memoryProfilingEnabled() const override { return true; }
  void reset_peak() { peak = live; }
  /// Bytes allocated since installation and not yet freed, by any thread (a 1-element probe
  /// allocation makes the allocator report its current total).
  int64_t global_live() {
    { auto probe = at::empty({1}, at::kFloat); }
    return total;
  }
};

/// Installs a CpuAllocStats on this thread for its lifetime.
class CpuAllocCounter {
 public:
  CpuAllocCounter() : stats_(std::make_shared<CpuAllocStats>()), guard_(c10::DebugInfoKind::PROFILER_STATE, stats_) {
    FLAGS_caffe2_report_cpu_memory_usage = true;
  }
  CpuAllocStats& stats() { return *stats_; }

 private:
  std::shared_ptr<CpuAllocStats> stats_;
  c10::DebugInfoGuard guard_;
};

}  // namespace grpo::testing
