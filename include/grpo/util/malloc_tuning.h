#pragma once
// glibc malloc settings for a process that runs the model on the CPU (the grpo binary and the
// benches that stand for it call this first thing in main()).
//
// Why: a CPU decode step allocates and frees the same few hundred tensors of 0.1-13 MB every step
// (activations of [batch, hidden], casts to bf16, the [batch, vocabulary] logits). glibc serves
// blocks over its mmap threshold (128 KiB until it adapts) with mmap and gives them back with
// munmap, and trims the heap top past twice that: every step touched fresh pages, ~6,500 page
// faults per batch-64 decode step of SmolLM2-135M (perf stat), 2-3 ms each in the head and in the
// draws alone (docs/benchmarks.md, "bf16 on the CPU"). With these limits the blocks stay in the
// heap and are reused: ~220 faults per step. This is the same
// reason PyTorch's CPU performance guides point to jemalloc or tcmalloc; glibc's own knobs do it
// here without another allocator.
#include <cstddef>

namespace grpo::util {

/// Blocks up to kMallocMmapThreshold come from the heap (M_MMAP_THRESHOLD), and up to
/// kMallocTrimThreshold of free heap top is kept (M_TRIM_THRESHOLD), unless the user set
/// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ (or GLIBC_TUNABLES): theirs stay. Returns
/// whether it changed anything (false elsewhere than glibc). Call once, before threads start.
bool tune_malloc_for_cpu_tensors();

/// 32 MiB: glibc's own ceiling for its adaptive threshold, fixed from the start. 64 MiB of free
/// heap top kept: enough for a step's transient tensors; more raised `grpo train`'s peak RSS
/// (tests/train/plan_peak_test.cpp: 256 MiB kept gave +16% on its 18M-parameter run, 64 MiB none).
inline constexpr std::size_t kMallocMmapThreshold = std::size_t{32} << 20;
inline constexpr std::size_t kMallocTrimThreshold = std::size_t{64} << 20;

}  // namespace grpo::util
