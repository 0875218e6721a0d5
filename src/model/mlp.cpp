#include "grpo/model/mlp.h"

#include "grpo/kernels/ops.h"
#include "grpo/model/packed_linear.h"

#include "fp8_linear.h"

namespace grpo::model {

MlpImpl::MlpImpl(int64_t hidden, int64_t intermediate) {
  auto lin = [](int64_t i, int64_t o) { return torch::nn::Linear(torch::nn::LinearOptions(i, o).bias(false)); };
  gate_proj = register_module("gate_proj", lin(hidden, intermediate));
  up_proj = register_module("up_proj", lin(hidden, intermediate));
  down_proj = register_module("down_proj", lin(intermediate, hidden));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  // up before gate: the order the original one-expression form ran in (GCC evaluates operator*'s
  // operands right to left). Autograd runs backward nodes in reverse creation order, so this order
  // fixes the order in which x's gradient contributions are summed: changing it changes the last
  // bits of training (the quickstart's numbers must reproduce bit for bit).
  auto up = linear(up_proj, x, linear_impl);      // [..., intermediate]
  auto gate = linear(gate_proj, x, linear_impl);  // [..., intermediate]
  return linear(down_proj, impl == OpImpl::GRPO ? kernels::swiglu(gate, up) : torch::silu(gate) * up, linear_impl);
}

}  // namespace grpo::model
