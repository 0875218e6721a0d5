// Token logprobs and entropy over one vocabulary chunk at a time (reference: token_logprobs.cpp).
// The chunk's logits come from a cuBLAS GEMM in the wrapper; these kernels fold them into a
// per-token online log-sum-exp state (m, s, t) in float32 (Milakov & Gimelshein 2018):
//   s = sum_v exp(z_v - m),  t = sum_v exp(z_v - m) (z_v - m),
// from which lse = m + log s and entropy = log s - t / s. One block per token row.
#include <math_constants.h>

#include "cuda_common.cuh"

namespace grpo::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : -CUDART_INF_F;
  return warp_max(v);
}

template <class T>
__global__ void lse_chunk_update_kernel(const T* __restrict__ logits, int64_t chunk, int64_t ld,
                                        int64_t vocab_begin, const int64_t* __restrict__ targets,
                                        float inv_t, float* __restrict__ m, float* __restrict__ s,
                                        float* __restrict__ t, float* __restrict__ zt) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* z = logits + row * ld;
  float mx = -CUDART_INF_F;
  for (int64_t c = threadIdx.x; c < chunk; c += blockDim.x) mx = fmaxf(mx, to_f32(z[c]) * inv_t);
  mx = block_max(mx, scratch);
  float sc = 0.f, tc = 0.f;
  for (int64_t c = threadIdx.x; c < chunk; c += blockDim.x) {
    const float d = to_f32(z[c]) * inv_t - mx;
    const float e = __expf(d);
    sc += e;
    tc += e * d;
  }
  sc = block_sum(sc, scratch);
  tc = block_sum(tc, scratch);
  if (threadIdx.x == 0) {
    const int64_t tg = targets[row] - vocab_begin;
    if (tg >= 0 && tg < chunk) zt[row] = to_f32(z[tg]) * inv_t;
    const float sr = s[row];
    if (sr == 0.f) {  // first chunk
      m[row] = mx;
      s[row] = sc;
      t[row] = tc;
    } else {
      const float mr = m[row], mn = fmaxf(mr, mx);
      const float ar = __expf(mr - mn), ac = __expf(mx - mn);
      s[row] = sr * ar + sc * ac;
      t[row] = ar * (t[row] + sr * (mr - mn)) + ac * (tc + sc * (mx - mn));
      m[row] = mn;
    }
  }
}

__global__ void lse_finalize_kernel(const float* m, const float* s, const float* t, const float* zt,
                                    float* logp, float* entropy, float* lse, int64_t tokens) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= tokens) return;
  const float ls = logf(s[i]);
  lse[i] = m[i] + ls;
  logp[i] = zt[i] - (m[i] + ls);
  entropy[i] = ls - t[i] / s[i];
}

// g_raw = (g_logp (onehot - p) - g_ent p (z - E[z])) * inv_t, z = raw * inv_t, p = exp(z - lse),
// E[z] = lse - entropy. Written over the logits.
template <class T>
__global__ void logprob_chunk_grad_kernel(T* __restrict__ logits, int64_t chunk, int64_t ld,
                                          int64_t vocab_begin, const int64_t* __restrict__ targets,
                                          float inv_t, const float* __restrict__ lse,
                                          const float* __restrict__ entropy,
                                          const float* __restrict__ grad_logp,
                                          const float* __restrict__ grad_entropy) {
  const int64_t row = blockIdx.x;
  T* z = logits + row * ld;
  const float l = lse[row], ez = l - entropy[row], gl = grad_logp[row], ge = grad_entropy[row];
  const int64_t tg = targets[row] - vocab_begin;
  for (int64_t c = threadIdx.x; c < chunk; c += blockDim.x) {
    const float zz = to_f32(z[c]) * inv_t;
    const float p = __expf(zz - l);
    float g = -gl * p - ge * p * (zz - ez);
    if (c == tg) g += gl;
    z[c] = from_f32<T>(g * inv_t);
  }
}

}  // namespace

void launch_lse_chunk_update(DType dt, const void* logits, int64_t tokens, int64_t chunk,
                             int64_t ld, int64_t vocab_begin, const int64_t* targets,
                             float inv_temperature, float* m, float* s, float* t, float* zt,
                             cudaStream_t stream) {
  if (tokens == 0) return;
  GRPO_DISPATCH_FLOAT(dt, lse_chunk_update_kernel<scalar_t><<<tokens, kThreads, 0, stream>>>(
                              static_cast<const scalar_t*>(logits), chunk, ld, vocab_begin, targets,
                              inv_temperature, m, s, t, zt));
  check_launch("lse_chunk_update");
}

void launch_lse_finalize(const float* m, const float* s, const float* t, const float* zt,
                         float* logp, float* entropy, float* lse, int64_t tokens,
                         cudaStream_t stream) {
  if (tokens == 0) return;
  lse_finalize_kernel<<<ceil_div(tokens, 256), 256, 0, stream>>>(m, s, t, zt, logp, entropy, lse,
                                                                 tokens);
  check_launch("lse_finalize");
}

void launch_logprob_chunk_grad(DType dt, void* logits, int64_t tokens, int64_t chunk, int64_t ld,
                               int64_t vocab_begin, const int64_t* targets, float inv_temperature,
                               const float* lse, const float* entropy, const float* grad_logp,
                               const float* grad_entropy, cudaStream_t stream) {
  if (tokens == 0) return;
  GRPO_DISPATCH_FLOAT(dt, logprob_chunk_grad_kernel<scalar_t><<<tokens, kThreads, 0, stream>>>(
                              static_cast<scalar_t*>(logits), chunk, ld, vocab_begin, targets,
                              inv_temperature, lse, entropy, grad_logp, grad_entropy));
  check_launch("logprob_chunk_grad");
}

}  // namespace grpo::kernels::cuda
