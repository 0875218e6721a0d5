#pragma once
// Which implementation a model module runs for its op: the plain LibTorch composition written in
// the module, or the grpo:: dispatcher op of include/grpo/kernels/ops.h (CUDA kernel on CUDA
// tensors, CPU reference on CPU). Modules start PLAIN; only model/apply_kernels.cpp changes it,
// once, after the model is built (torchtitan's "apply" style), so forward() never reads config.
namespace grpo::model {

enum class OpImpl { PLAIN, GRPO };

/// How a decoder layer's GEMM runs (q/k/v/o, gate/up/down, experts): PLAIN = torch::nn::Linear
/// (model::linear), FP8 = grpo::fp8_linear, the FP8 block-scaled forward, input-gradient and
/// weight-gradient GEMMs of DeepSeek-V3 sec. 3.3 over the unchanged master weight (fp8_linear.h).
/// Set by apply_kernels for kernels.fp8 (CUDA sm_90 only).
enum class LinearImpl { PLAIN, FP8 };

}  // namespace grpo::model
