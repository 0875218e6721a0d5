#pragma once
// A decoder layer's linear under its module's LinearImpl slot (op_impl.h): the plain path is
// model::linear (packed_linear.h); FP8 is grpo::fp8_linear (kernels/fp8.cpp): x in 1x128 tiles,
// the weight in 128x128 blocks, e4m3 with float32 scales, float32 accumulation promoted every 128
// K-elements, and the input- and weight-gradient GEMMs in FP8 too (DeepSeek-V3 sec. 3.3, Fig. 6).
// The master weight (bf16/fp32) is quantised on every call and never changed. Private to the
// model layer.
#include <torch/torch.h>

#include "grpo/model/op_impl.h"

namespace grpo::model {

/// l(x) with l's weight [out, in] and optional bias [out]; x: [..., in] -> [..., out] in x's dtype.
/// FP8 adds the bias after the FP8 GEMM (in x's dtype) and, when apply_lora attached an enabled
/// adapter, its term computed as model::linear would (only the base GEMM is FP8).
torch::Tensor linear(torch::nn::Linear& l, const torch::Tensor& x, LinearImpl impl);

}  // namespace grpo::model
