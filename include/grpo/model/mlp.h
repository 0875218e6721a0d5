#pragma once
// SwiGLU feed-forward (Shazeer 2020, "GLU Variants Improve Transformer"):
// down(silu(gate(x)) * up(x)), no biases, as in Llama/Qwen/Mixtral experts.
#include <torch/torch.h>

#include "grpo/model/op_impl.h"

namespace grpo::model {

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t hidden, int64_t intermediate);
  /// x: [..., hidden] -> [..., hidden], same dtype.
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  OpImpl impl = OpImpl::PLAIN;  // silu(gate) * up: plain, or grpo::swiglu (set by apply_kernels)
  LinearImpl linear_impl = LinearImpl::PLAIN;  // gate/up/down: nn::Linear or FP8 (set by apply_kernels)
};
TORCH_MODULE(Mlp);

}  // namespace grpo::model
