#pragma once
// RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization"): y = w * x / sqrt(mean(x^2) + eps),
// computed in float32 and cast back, as HF LlamaRMSNorm does (bf16 parity depends on it).
#include <torch/torch.h>

namespace grpo::model {

class RMSNormImpl : public torch::nn::Module {
 public:
  /// `dim`: size of the normalised last axis; the weight starts at ones.
  RMSNormImpl(int64_t dim, double eps);
  /// x: [..., dim], any float dtype -> same shape and dtype.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace grpo::model
