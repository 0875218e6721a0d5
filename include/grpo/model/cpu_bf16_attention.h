#pragma once
// CPU bf16 attention with gradients (model/attention.cpp, training forwards): the forward is
// LibTorch's bf16 SDPA, the very call the forwards without gradients make (same values to the bit:
// old and reference log-probs, the rollout's arithmetic), and the backward is computed in float32
// from the bf16 q/k/v (widened exactly) with batched products instead of LibTorch's bf16
// flash-attention backward. That backward spends most of its time setting up a oneDNN product per
// block (malloc, descriptors, perf). SmolLM2-135M's attention shape, B=16 T=96, 1 thread, per
// layer (python replicas, beside a training run): this backward 30-46 ms, LibTorch's bf16 one
// 63-137 ms (float32 SDPA's own backward ~20 ms, but its forward would differ from the bf16 one).
// LibTorch's bf16 backward per layer by length (same tokens per batch): 65 ms at T=96, 23 at 256,
// 24 at 384. This one materialises the [B, H, T, S] probabilities (a few such tensors at a time,
// one layer at a time): used up to kCpuBf16MathBackwardMaxLen query tokens, LibTorch's beyond.
#include <torch/torch.h>

namespace grpo::model {

/// Query lengths up to which a CPU bf16 attention forward with gradients takes cpu_bf16_sdpa.
inline constexpr int64_t kCpuBf16MathBackwardMaxLen = 256;

/// q [B, H, T, hd], k/v [B, Hkv, S, hd] bf16 on the CPU (H a multiple of Hkv: grouped-query heads,
/// kv head i serving query heads i*H/Hkv ...), mask [B or 1, 1, T, S] bool (true = may attend) or
/// undefined. Returns at::scaled_dot_product_attention(q, k, v, mask, scale 1/sqrt(hd), enable_gqa)
/// [B, H, T, hd] bf16; its backward gives q/k/v gradients in bf16 from float32 arithmetic (rows
/// with no key allowed get zero gradients).
torch::Tensor cpu_bf16_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask);

/// Backward calls of cpu_bf16_sdpa so far in this process (for tests: which backward ran).
int64_t cpu_bf16_sdpa_backwards();

}  // namespace grpo::model
