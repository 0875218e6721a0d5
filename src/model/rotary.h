#pragma once
// Rotary position embeddings (Su et al. 2021, RoFormer), "rotate_half" layout as in HF Llama
// (the two halves of each head are the real/imaginary parts), with optional Llama-3 frequency
// scaling (HF _compute_llama3_parameters).
#include <torch/torch.h>

#include "grpo/model/model_spec.h"
#include "grpo/model/op_impl.h"

namespace grpo::model {

/// The inverse frequencies theta^(-2i/head_dim), i < head_dim/2, float32 [head_dim/2], Llama-3
/// scaled when spec.rope_scaling.factor > 0. Computed in float32 exactly as HF does.
torch::Tensor rope_inv_freq(const ModelSpec& spec);

/// cos and sin tables for `positions` [B, T] int64: each [B, T, head_dim], float32.
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions);

/// Rotates x [B, H, T, head_dim] by cos/sin [B, T, head_dim] (float32; cast to x's dtype):
/// x * cos + rotate_half(x) * sin.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

/// Rotates q [B, T, H, head_dim] and k [B, T, Hkv, head_dim] by cos/sin [B, T, head_dim] and
/// returns them as [B, H, T, head_dim] and [B, Hkv, T, head_dim]: apply_rope on each (PLAIN), or
/// one grpo::rope call on both (GRPO; the tables' two equal halves passed once).
std::pair<torch::Tensor, torch::Tensor> apply_rope_qk(const torch::Tensor& q, const torch::Tensor& k,
                                                      const torch::Tensor& cos, const torch::Tensor& sin,
                                                      OpImpl impl);

}  // namespace grpo::model
