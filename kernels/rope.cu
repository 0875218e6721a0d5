// RoPE in place, "rotate half" layout (reference: rope.cpp). One thread per (token, head, i < d/2)
// pair; the inverse rotation (backward) negates sin.
#include "cuda_common.cuh"

namespace grpo::kernels::cuda {
namespace {

template <class T>
__global__ void rope_kernel(T* __restrict__ x, const float* __restrict__ cos,
                            const float* __restrict__ sin, int64_t tokens, int64_t heads,
                            int64_t half, float sign) {
  const int64_t total = tokens * heads * half;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t th = idx / half;  // token * heads + head
    const int64_t t = th / heads;
    T* row = x + th * 2 * half;
    const float c = cos[t * half + i], s = sign * sin[t * half + i];
    const float a = to_f32(row[i]), b = to_f32(row[i + half]);
    row[i] = from_f32<T>(a * c - b * s);
    row[i + half] = from_f32<T>(b * c + a * s);
  }
}

}  // namespace

void launch_rope_inplace(DType dt, void* x, const float* cos, const float* sin, int64_t tokens,
                         int64_t heads, int64_t head_dim, bool inverse, cudaStream_t stream) {
  const int64_t half = head_dim / 2, total = tokens * heads * half;
  if (total == 0) return;
  int64_t blocks = ceil_div(total, 256);
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  GRPO_DISPATCH_FLOAT(dt, rope_kernel<scalar_t><<<blocks, 256, 0, stream>>>(
                              static_cast<scalar_t*>(x), cos, sin, tokens, heads, half,
                              inverse ? -1.f : 1.f));
  check_launch("rope");
}

}  // namespace grpo::kernels::cuda
