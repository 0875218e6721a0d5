#pragma once
// Which implementation a model module runs for its op: the plain LibTorch composition written in
// the module, or the grpo:: dispatcher op of include/grpo/kernels/ops.h (CUDA kernel on CUDA
// tensors, CPU reference on CPU). Modules start PLAIN; only model/apply_kernels.cpp changes it,
// once, after the model is built (torchtitan's "apply" style), so forward() never reads config.
namespace grpo::model {

enum class OpImpl { PLAIN, GRPO };

}  // namespace grpo::model
