#pragma once
// trainer.bf16: mixed precision as torch.autocast(device_type, dtype=torch.bfloat16) does it, on
// CUDA and on the CPU. Inside the scope, matmuls, linears and SDPA run in bf16 (LibTorch's autocast
// lists for the device) while parameters, optimizer state and gradients stay float32 ("master
// weights"); the ops autocast keeps in float32 stay so, and elementwise ops follow their inputs'
// dtypes (a float32 residual plus a bf16 block output is float32). bf16 needs no loss scaling
// (its exponent range is float32's), unlike fp16.
//
// In the model layer, not train, so that any forward of the model (the training log-probs, and
// the rollout when it wants the same arithmetic) opens the same scope.
#include <torch/torch.h>

namespace grpo::model {

/// RAII scope of bf16 autocast on `device`'s type (CUDA or CPU). `on` false, or another device
/// type: does nothing. Nests like torch.autocast: the weight-cast cache is cleared when the
/// outermost scope ends, so bf16 copies of the weights never outlive an optimizer step. Not
/// copyable. On the CPU, whether the bf16 products run on AMX, AVX512-BF16 or emulation:
/// util::bf16_path().
class Bf16Autocast {
 public:
  Bf16Autocast(bool on, const torch::Device& device);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  at::DeviceType type_ = at::kCPU;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kHalf;
};

}  // namespace grpo::model
