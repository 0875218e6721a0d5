#include "grpo/model/mlp.h"

#include "grpo/kernels/ops.h"
#include "grpo/model/packed_linear.h"

namespace grpo::model {

MlpImpl::MlpImpl(int64_t hidden, int64_t intermediate) {
  auto lin = [](int64_t i, int64_t o) { return torch::nn::Linear(torch::nn::LinearOptions(i, o).bias(false)); };
  gate_proj = register_module("gate_proj", lin(hidden, intermediate));
  up_proj = register_module("up_proj", lin(hidden, intermediate));
  down_proj = register_module("down_proj", lin(intermediate, hidden));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto gate = linear(gate_proj, x), up = linear(up_proj, x);  // [..., intermediate]
  return linear(down_proj, impl == OpImpl::GRPO ? kernels::swiglu(gate, up) : torch::silu(gate) * up);
}

}  // namespace grpo::model
