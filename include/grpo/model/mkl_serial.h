#pragma once
// MKL single-threaded on the calling thread while alive (MKL_Set_Num_Threads_Local(1)), for ATen
// CPU kernels that call MKL from inside their own OpenMP region. LibTorch's bf16 flash attention
// (cpu_flash_attention<BFloat16>) parallelises over (batch, head, query block) and calls MKL's
// bf16 gemm/gemv per block; MKL then opens a nested OpenMP region (of one thread: nesting is
// inactive) per call, ~35,000 per batch-64 decode step of SmolLM2-135M. With MKL told it runs on
// one thread it skips them: same products (one thread either way), less time at 2+ threads
// (docs/benchmarks.md, "bf16 on the CPU"). Found at run time (dlsym): a LibTorch without MKL makes
// this a no-op.
#include <cstdint>

namespace grpo::model {

class MklSerial {
 public:
  /// `on` false, or no MKL in this process: does nothing.
  explicit MklSerial(bool on);
  ~MklSerial();
  MklSerial(const MklSerial&) = delete;
  MklSerial& operator=(const MklSerial&) = delete;
  bool active() const { return active_; }

  /// Whether this process has MKL's thread controls (LibTorch built with MKL).
  static bool available();
  /// MKL's thread count for the calling thread now (mkl_get_max_threads), -1 without MKL.
  static int mkl_threads();
  /// Active scopes opened so far in this process (for tests: did a path take the scope).
  static int64_t opened();

 private:
  bool active_ = false;
  int prev_local_ = 0;  // MKL's previous thread-local setting (0: none, the global count applies)
};

}  // namespace grpo::model
