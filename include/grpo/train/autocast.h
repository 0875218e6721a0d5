#pragma once
// trainer.bf16: mixed precision as torch.autocast(device_type="cuda", dtype=torch.bfloat16) does it.
// Inside the scope, CUDA matmuls, linears and SDPA run in bf16 while parameters, optimizer state
// and gradients stay float32 ("master weights"); reductions autocast keeps in float32 stay so.
// bf16 needs no loss scaling (its exponent range is float32's), unlike fp16.
#include <torch/torch.h>

namespace grpo::train {

/// RAII scope of bf16 autocast on CUDA. `on` false, or a non-CUDA `device`: does nothing (the
/// trainer refuses nothing on CPU; it warns once at the start of a stage and trains in float32).
/// Nests like torch.autocast: the weight-cast cache is cleared when the outermost scope ends, so
/// casts never outlive an optimizer step. Not copyable.
class Bf16Autocast {
 public:
  Bf16Autocast(bool on, const torch::Device& device);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kHalf;
};

}  // namespace grpo::train
