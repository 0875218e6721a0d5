#include "grpo/model/norm.h"

#include "grpo/kernels/ops.h"

namespace grpo::model {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  if (impl == OpImpl::GRPO) {
    // The op takes x and weight in one dtype: use the one the plain product below promotes to
    // (float32 for bf16 activations under autocast with float32 weights).
    const auto dt = torch::result_type(x, weight);
    return kernels::rms_norm(x.to(dt), weight.to(dt), eps_);
  }
  // At least float32 (HF's upcast); float64 stays float64, as the grpo:: op computes it.
  auto h = x.to(torch::promote_types(x.scalar_type(), torch::kFloat32));
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * h.to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor> RMSNormImpl::add_forward(const torch::Tensor& x, const torch::Tensor& residual) {
  const auto ht = torch::result_type(x, residual);  // the dtype of the plain sum x + residual
  if (impl == OpImpl::GRPO && ht == weight.scalar_type()) {
    // Widening to ht is exact, so h is the plain sum; y then is forward(h).
    auto [y, h] = kernels::add_rms_norm(x.to(ht), residual.to(ht), weight, eps_);
    return {y, h};
  }
  auto h = x + residual;
  return {forward(h), h};
}

}  // namespace grpo::model
