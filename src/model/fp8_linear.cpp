#include "fp8_linear.h"

#include "grpo/kernels/ops.h"
#include "grpo/model/lora.h"
#include "grpo/model/packed_linear.h"

namespace grpo::model {

torch::Tensor linear(torch::nn::Linear& l, const torch::Tensor& x, LinearImpl impl) {
  if (impl == LinearImpl::PLAIN) return linear(l, x);
  auto y = kernels::fp8_linear(x, l->weight);  // [..., out], x's dtype
  if (l->bias.defined()) y = y + l->bias.to(y.scalar_type());
  // A LoRA adapter (lora.h) adds its unmerged term in its own precision: only the base GEMM is FP8.
  LoraAdapterImpl* a = lora_adapter(*l);
  return a && a->enabled ? y + a->delta(x) : y;
}

}  // namespace grpo::model
