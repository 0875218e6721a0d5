#pragma once
// CPU bf16 attention of one new token per row against a bf16 KV cache (model/attention.cpp, decode
// steps without gradients under trainer.bf16 on the CPU).
//
// Why not LibTorch's bf16 SDPA: for one query token it runs its flash-attention loop per (row,
// head) with an MKL bf16 gemv per block and a per-call set-up. Here one pass per (row, kv head)
// reads each cached key and value row once (widened to float32 into a per-thread buffer) for the
// H/Hkv query heads that share it (grouped-query attention). At SmolLM2-135M's decode shape
// (batch 64, 9 query / 3 key-value heads of 64, 96 cached tokens) both read 4.7 MB of cache per
// layer, which bounds either; the bf16 SDPA also did not get faster with a second thread
// (docs/benchmarks.md, "bf16 on the CPU").
//
// Arithmetic, as LibTorch's CPU flash attention in bf16 (ATen/native/cpu/FlashAttentionKernel.cpp,
// one key block when S <= 512), so a rollout's decode step and the trainer's bf16 forward round
// alike:
//   s_j  = scale * sum_d q_d k_jd       (bf16 inputs widened exactly, float32 sums), -inf if masked
//   p_j  = exp(s_j - max_j s_j)         (float32), l = sum_j p_j (float32)
//   o_d  = sum_j bf16(p_j) v_jd         (the probabilities rounded to bf16 as flash attention's
//                                        second product takes them; float32 sums)
//   out  = bf16(o_d / l)
// Only the order of the float32 sums differs (and exp's last-bit rounding). A row whose keys are all
// masked gives zeros (flash attention's output there is undefined; the model never asks for it).
//
// Two implementations with the same formulas: AVX-512 (when the CPU has avx512f and head_dim is a
// multiple of 16 up to 256) and the plain reference loop beside it (the tests' second opinion).
// Elsewhere applies() is false and the model keeps LibTorch's SDPA: the plain loop is slower.
#include <torch/torch.h>

#include <cstdint>

namespace grpo::model {

/// q [B, H, 1, hd] bf16, k/v [B, Hkv, S, hd] bf16 with unit stride in hd (the cache's filled prefix
/// views are fine), H a multiple of Hkv (kv head i serves query heads i*H/Hkv ...), mask
/// [B or 1, 1, 1, S] bool (true = may attend) or undefined; all on the CPU, no gradients.
/// Returns softmax(q k^T / sqrt(hd) + mask) v as [B, H, 1, hd] bf16 (formulas above).
/// Throws grpo::InternalError on other shapes, dtypes or devices. Without the AVX-512 loop for this
/// head_dim it runs the reference loop.
torch::Tensor cpu_bf16_decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& mask);

/// Whether the model should take cpu_bf16_decode_attention for these arguments: the shapes and
/// dtypes above, and the AVX-512 loop available for this head_dim on this CPU.
bool cpu_bf16_decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const torch::Tensor& mask);

/// The same with the plain reference loop forced (tests).
torch::Tensor cpu_bf16_decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                                  const torch::Tensor& mask);

/// Calls of cpu_bf16_decode_attention so far in this process, and how many of them took the AVX-512
/// loop (tests: which path ran).
int64_t cpu_bf16_decode_attention_calls();
int64_t cpu_bf16_decode_attention_avx512_calls();

}  // namespace grpo::model
