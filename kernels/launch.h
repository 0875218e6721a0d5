#pragma once
// Host entry points of the CUDA kernels (kernels/*.cu). Deliberately free of torch headers so
// that nvcc compiles the .cu files in seconds: tensors arrive as raw device pointers, sizes and
// the stream to launch on. The .cpp files of kernels/ validate shapes, allocate outputs and call
// these. Every launcher throws std::runtime_error naming the kernel when the launch fails.
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;

namespace grpo::kernels::cuda {

/// Element type of the float tensors a kernel reads and writes (accumulation is float32).
enum class DType { F32, BF16 };

// RMSNorm (kernels/rms_norm.cu). x, residual (may be null), h_out (null when residual is null),
// y: [rows, cols] of dtype; weight: [cols] of dtype; rstd: [rows] float32.
void launch_rms_norm_fwd(DType dt, const void* x, const void* residual, const void* weight, void* y,
                         void* h_out, float* rstd, int64_t rows, int64_t cols, float eps,
                         cudaStream_t stream);
// grad_h = d/dh of the norm plus grad_h_extra (may be null); grad_w_partial: [row_blocks, cols]
// float32 per-block sums of grad_y * h * rstd, summed by the caller. row_blocks =
// rms_norm_bwd_row_blocks(rows).
int64_t rms_norm_bwd_row_blocks(int64_t rows);
void launch_rms_norm_bwd(DType dt, const void* grad_y, const void* grad_h_extra, const void* h,
                         const void* weight, const float* rstd, void* grad_h, float* grad_w_partial,
                         int64_t rows, int64_t cols, cudaStream_t stream);

// SwiGLU (kernels/swiglu.cu), n elements each.
void launch_swiglu_fwd(DType dt, const void* gate, const void* up, void* out, int64_t n,
                       cudaStream_t stream);
void launch_swiglu_bwd(DType dt, const void* grad, const void* gate, const void* up,
                       void* grad_gate, void* grad_up, int64_t n, cudaStream_t stream);

// RoPE in place (kernels/rope.cu). x: [tokens, heads, head_dim]; cos, sin: [tokens, head_dim/2].
void launch_rope_inplace(DType dt, void* x, const float* cos, const float* sin, int64_t tokens,
                         int64_t heads, int64_t head_dim, bool inverse, cudaStream_t stream);

// Token logprobs (kernels/token_logprobs.cu). logits: one vocabulary chunk [tokens, chunk] of
// dtype, row stride ld, holding columns [vocab_begin, vocab_begin + chunk). Running state per
// token (float32): m = max, s = sum exp(z - m), t = sum exp(z - m) (z - m), zt = target logit.
void launch_lse_chunk_update(DType dt, const void* logits, int64_t tokens, int64_t chunk,
                             int64_t ld, int64_t vocab_begin, const int64_t* targets,
                             float inv_temperature, float* m, float* s, float* t, float* zt,
                             cudaStream_t stream);
// logp = zt - (m + log s); entropy = log s - t / s; lse = m + log s.
void launch_lse_finalize(const float* m, const float* s, const float* t, const float* zt,
                         float* logp, float* entropy, float* lse, int64_t tokens,
                         cudaStream_t stream);
// In place: logits chunk -> gradient w.r.t. the raw logits (hidden @ weight^T, before the
// temperature): g = (g_logp (onehot - p) - g_ent p (z - E[z])) / temperature.
void launch_logprob_chunk_grad(DType dt, void* logits, int64_t tokens, int64_t chunk, int64_t ld,
                               int64_t vocab_begin, const int64_t* targets, float inv_temperature,
                               const float* lse, const float* entropy, const float* grad_logp,
                               const float* grad_entropy, cudaStream_t stream);

// MoE (kernels/moe.cu). expert_ids: [M] int64; outputs sorted_slots, slot_rows: [M] int64,
// offsets: [E+1] int64. workspace: moe_permute_workspace_ints(M, E) int64s.
int64_t moe_permute_workspace_ints(int64_t m, int64_t num_experts);
void launch_moe_permute(const int64_t* expert_ids, int64_t m, int64_t num_experts,
                        int64_t* sorted_slots, int64_t* slot_rows, int64_t* offsets,
                        int64_t* workspace, cudaStream_t stream);
// out[i] = (weights ? weights[s] : 1) * x[s / topk], s = sorted_slots[i]; x: [M / topk, d].
void launch_moe_gather(DType dt, const void* x, const int64_t* sorted_slots, const float* weights,
                       void* out, int64_t m, int64_t d, int64_t topk, cudaStream_t stream);
// out[t] = sum_j (weights ? weights[t*k+j] : 1) * y[slot_rows[t*k+j]]; out: [M / topk, d].
void launch_moe_unpermute(DType dt, const void* y, const int64_t* slot_rows, const float* weights,
                          void* out, int64_t tokens, int64_t d, int64_t topk, cudaStream_t stream);
// grad_w[s] = dot(y[slot_rows[s]], grad_out[s / topk]) in float32; grad_w: [M] float32.
void launch_moe_router_grad(DType dt, const void* y, const int64_t* slot_rows, const void* grad_out,
                            float* grad_w, int64_t m, int64_t d, int64_t topk, cudaStream_t stream);
// Grouped GEMM: for rows i of expert e (offsets on the device),
//   trans_w: out[i, n] = sum_k x[i, k] w[e, n, k]   (w: [E, N, K], x: [M, K], out: [M, N])
//   else:    out[i, k] = sum_n x[i, n] w[e, n, k]   (w: [E, N, K], x: [M, N], out: [M, K])
// out_cols/red = (N, K) when trans_w else (K, N).
void launch_moe_grouped_gemm(DType dt, const void* x, const void* w, const int64_t* offsets,
                             void* out, int64_t m, int64_t out_cols, int64_t red,
                             int64_t num_experts, bool trans_w, cudaStream_t stream);
// Weight gradient: grad_w[e, n, k] = sum_{i of e} gy[i, n] x[i, k]; gy: [M, N], x: [M, K],
// grad_w: [E, N, K] float32.
void launch_moe_grouped_wgrad(DType dt, const void* gy, const void* x, const int64_t* offsets,
                              float* grad_w, int64_t m, int64_t n, int64_t k, int64_t num_experts,
                              cudaStream_t stream);

// FP8 (kernels/fp8.cu). x: [rows, cols] of dtype; q: [rows, cols] e4m3 bytes.
// block_rows = 1: scale [rows, ceil(cols/128)]; block_rows = 128: [ceil(rows/128), ceil(cols/128)].
void launch_fp8_quantize(DType dt, const void* x, uint8_t* q, float* scale, int64_t rows,
                         int64_t cols, int64_t block_rows, cudaStream_t stream);
// out[m, n] = sum_kb sa[m, kb] sb[n / b_block_rows, kb] * sum_{k in kb} a[m, k] b[n, k].
void launch_fp8_gemm_nt(const uint8_t* a, const float* a_scale, const uint8_t* b,
                        const float* b_scale, int64_t b_block_rows, void* out, DType out_dt,
                        int64_t m, int64_t n, int64_t k, cudaStream_t stream);

}  // namespace grpo::kernels::cuda
