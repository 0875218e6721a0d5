#pragma once
// C++ entry points of the custom operators (PyTorch dispatcher namespace `grpo`, see kernels/).
// Each call dispatches on the tensors' device: CUDA tensors run our kernels (kernels/*.cu), CPU
// tensors run the reference, a plain LibTorch composition that CPU training uses as is. Every
// differentiable op records a torch::autograd::Function, so calling it in training gives the
// matching backward kernels; double backward is not supported.
//
// Dtypes: "float" below means float32 or bfloat16 (the CPU references also take float64, which
// the finite-difference tests use); accumulation is always in float32 (float64 for float64).
// Bad shapes or dtypes throw c10::Error (TORCH_CHECK) naming the op and what was expected.
#include <torch/torch.h>

#include <tuple>

namespace grpo::kernels {

/// RMSNorm (Zhang & Sennrich 2019, eq. 4; Llama's LlamaRMSNorm):
///   y = x / sqrt(mean(x^2, -1) + eps) * weight
/// x: [..., hidden] float; weight: [hidden], same dtype as x. Returns y like x.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

/// Residual add fused with RMSNorm (the pre-norm transformer step): h = x + residual, rounded to
/// x's dtype (as the unfused model stores it), then y = rms_norm(h, weight, eps).
/// x, residual: [..., hidden] float, same shape and dtype; weight: [hidden]. Returns (y, h).
std::tuple<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x,
                                                      const torch::Tensor& residual,
                                                      const torch::Tensor& weight, double eps);

/// SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6): silu(gate) * up.
/// gate, up: same shape and dtype, float. Returns a tensor like gate.
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

/// Rotary position embedding (Su et al. 2021, RoFormer eq. 34) in the "rotate half" layout of
/// transformers' apply_rotary_pos_emb: for i < d/2,
///   out[i] = x[i] cos[i] - x[i + d/2] sin[i],  out[i + d/2] = x[i + d/2] cos[i] + x[i] sin[i].
/// q: [..., q_heads, head_dim], k: [..., kv_heads, head_dim] float, contiguous, with the same
/// number T of leading positions (product of the leading dims); cos, sin: [T, head_dim / 2]
/// float32 (the angles of each token's position). Out of place, differentiable in q and k:
/// returns (q_rot, k_rot). The backward is the inverse rotation (sin -> -sin).
std::tuple<torch::Tensor, torch::Tensor> rope(const torch::Tensor& q, const torch::Tensor& k,
                                              const torch::Tensor& cos, const torch::Tensor& sin);

/// Same rotation applied in place to q and k (inference; not differentiable). inverse = true
/// rotates by -angle (what the backward does).
void rope_(torch::Tensor& q, torch::Tensor& k, const torch::Tensor& cos, const torch::Tensor& sin,
           bool inverse = false);

/// Per-token log-probability of the chosen token and entropy of the softmax over the vocabulary,
/// straight from the final hidden states, never materialising [tokens, vocab] in full:
///   z = hidden @ weight^T / temperature,  logp = z[target] - logsumexp(z),
///   entropy = -sum_v p_v log p_v = logsumexp(z) - sum_v p_v z_v.
/// The vocabulary is walked in chunks of chunk_size rows of weight with an online log-sum-exp in
/// float32 (Milakov & Gimelshein 2018); the backward recomputes each chunk's logits.
/// hidden: [tokens, d] float; weight: [vocab, d] same dtype (the lm_head / tied embedding);
/// targets: [tokens] int64 in [0, vocab). Returns (logp [tokens] float32, entropy [tokens] float32).
/// Differentiable in hidden and weight.
std::tuple<torch::Tensor, torch::Tensor> token_logprobs(const torch::Tensor& hidden,
                                                        const torch::Tensor& weight,
                                                        const torch::Tensor& targets,
                                                        double temperature = 1.0,
                                                        int64_t chunk_size = 4096);

/// Routing of a mixture-of-experts layer, grouped by expert. For T tokens routed to top-k experts
/// the M = T*k "slots" are numbered slot = t*k + j.
struct MoeRouting {
  torch::Tensor sorted_slots;  // [M] int64: the slots ordered by expert, stable (by slot) within one
  torch::Tensor slot_rows;     // [M] int64: inverse permutation, row of sorted order holding slot
  torch::Tensor offsets;       // [E + 1] int64: rows [offsets[e], offsets[e+1]) go to expert e
};

/// Groups the slots by expert without a host synchronisation (counts stay on the device).
/// expert_ids: [T, k] int64 (or int32) in [0, num_experts). Throws on out-of-range ids (CPU only;
/// on CUDA an out-of-range id is a device-side error).
MoeRouting moe_permute(const torch::Tensor& expert_ids, int64_t num_experts);

/// Rows of x in expert order: out[i] = x[sorted_slots[i] / k]. x: [T, d] float. Returns [T*k, d].
/// Differentiable in x.
torch::Tensor moe_gather(const torch::Tensor& x, const MoeRouting& routing, int64_t topk);

/// Grouped GEMM over experts: out[i] = x[i] @ weight[e]^T for the rows i of expert e.
/// x: [M, K] float (expert order); weight: [E, N, K] same dtype (nn.Linear layout per expert).
/// Returns [M, N] like x. Differentiable in x and weight.
torch::Tensor moe_grouped_gemm(const torch::Tensor& x, const torch::Tensor& weight,
                               const MoeRouting& routing);

/// Weighted sum back to tokens: out[t] = sum_j router_weights[t, j] * y[slot_rows[t*k + j]].
/// y: [T*k, N] float (expert order); router_weights: [T, k], any float dtype (the CUDA kernels
/// read them as float32). Returns [T, N] like y. Differentiable in y and router_weights.
torch::Tensor moe_unpermute(const torch::Tensor& y, const MoeRouting& routing,
                            const torch::Tensor& router_weights);

/// FP8 e4m3 (OCP FP8, max 448) quantisation with float32 scales, DeepSeek-V3 sec 3.3.1:
/// activations in 1x128 tiles along the last dim, weights in 128x128 blocks. The scale of a tile
/// is amax / 448 (amax clamped below at 1e-4, as DeepGEMM), q = round_to_e4m3(x / scale).
/// x: [M, K] float. Returns (q [M, K] float8_e4m3fn, scale [M, ceil(K/128)] float32).
std::tuple<torch::Tensor, torch::Tensor> fp8_quantize_act(const torch::Tensor& x);
/// w: [N, K] float. Returns (q [N, K] float8_e4m3fn, scale [ceil(N/128), ceil(K/128)] float32).
std::tuple<torch::Tensor, torch::Tensor> fp8_quantize_weight(const torch::Tensor& w);

/// FP8 GEMM "NT" (as DeepGEMM's fp8_gemm_nt): out = dequant(a) @ dequant(b)^T, accumulated in
/// float32 and promoted (multiplied by the two scales and added to the float32 accumulator) every
/// 128 K-elements, DeepSeek-V3 sec 3.3.2. a: [M, K] e4m3 with a_scale [M, ceil(K/128)];
/// b: [N, K] e4m3 with b_scale either [ceil(N/128), ceil(K/128)] (128x128 weight blocks) or
/// [N, ceil(K/128)] (1x128 tiles). out_dtype: float32 or bfloat16. Returns [M, N].
torch::Tensor fp8_gemm(const torch::Tensor& a, const torch::Tensor& a_scale, const torch::Tensor& b,
                       const torch::Tensor& b_scale, torch::ScalarType out_dtype);

/// Linear layer y = x @ w^T with all three GEMMs in FP8 (DeepSeek-V3 Figure 6): forward with x in
/// 1x128 tiles and w in 128x128 blocks; input gradient dy @ w likewise; weight gradient
/// dy^T @ x with both operands in 1x128 tiles along the token dimension.
/// x: [..., K] float; w: [N, K] float. Returns [..., N] in x's dtype. Differentiable in x and w.
torch::Tensor fp8_linear(const torch::Tensor& x, const torch::Tensor& w);

/// True when this build registered CUDA kernels (GRPO_HAVE_CUDA_KERNELS).
bool have_cuda_kernels();

/// Compute capability of CUDA device `index` as major * 10 + minor (90 for H100/H200); 0 in a
/// build without CUDA kernels or when the device cannot be queried.
int cuda_compute_capability(int64_t index);

}  // namespace grpo::kernels
