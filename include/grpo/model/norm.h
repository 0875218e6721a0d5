#pragma once
// RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization"): y = w * x / sqrt(mean(x^2) + eps),
// computed in float32 (float64 inputs in float64) and cast back, as HF LlamaRMSNorm does (bf16 parity
// depends on it). `impl` (set by apply_kernels) switches it to grpo::rms_norm / grpo::add_rms_norm.
#include <torch/torch.h>

#include <utility>

#include "grpo/model/op_impl.h"

namespace grpo::model {

class RMSNormImpl : public torch::nn::Module {
 public:
  /// `dim`: size of the normalised last axis; the weight starts at ones.
  RMSNormImpl(int64_t dim, double eps);
  /// x: [..., dim], any float dtype -> same shape and dtype.
  torch::Tensor forward(const torch::Tensor& x);
  /// The pre-norm residual step: h = x + residual, y = forward(h). Returns (y, h); with GRPO one
  /// fused grpo::add_rms_norm call when x, residual and weight promote to weight's dtype.
  std::pair<torch::Tensor, torch::Tensor> add_forward(const torch::Tensor& x, const torch::Tensor& residual);
  torch::Tensor weight;
  OpImpl impl = OpImpl::PLAIN;  // set by apply_kernels

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace grpo::model
