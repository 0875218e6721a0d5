// SwiGLU forward/backward (reference: swiglu.cpp): elementwise, float32 math.
#include "cuda_common.cuh"

namespace grpo::kernels::cuda {
namespace {

__device__ __forceinline__ float sigmoidf(float g) { return 1.f / (1.f + __expf(-g)); }

template <class T>
__global__ void swiglu_fwd_kernel(const T* __restrict__ gate, const T* __restrict__ up,
                                  T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_f32(gate[i]);
    out[i] = from_f32<T>(g * sigmoidf(g) * to_f32(up[i]));
  }
}

// d/dg [g s(g) u] = u s (1 + g (1 - s)),  d/du = g s(g)
template <class T>
__global__ void swiglu_bwd_kernel(const T* __restrict__ grad, const T* __restrict__ gate,
                                  const T* __restrict__ up, T* __restrict__ grad_gate,
                                  T* __restrict__ grad_up, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = to_f32(gate[i]), u = to_f32(up[i]), dy = to_f32(grad[i]);
    const float s = sigmoidf(g);
    grad_gate[i] = from_f32<T>(dy * u * s * (1.f + g * (1.f - s)));
    grad_up[i] = from_f32<T>(dy * g * s);
  }
}

int grid_for(int64_t n) {
  const int64_t blocks = ceil_div(n, 256);
  return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace

void launch_swiglu_fwd(DType dt, const void* gate, const void* up, void* out, int64_t n,
                       cudaStream_t stream) {
  if (n == 0) return;
  GRPO_DISPATCH_FLOAT(dt, swiglu_fwd_kernel<scalar_t><<<grid_for(n), 256, 0, stream>>>(
                              static_cast<const scalar_t*>(gate), static_cast<const scalar_t*>(up),
                              static_cast<scalar_t*>(out), n));
  check_launch("swiglu_fwd");
}

void launch_swiglu_bwd(DType dt, const void* grad, const void* gate, const void* up,
                       void* grad_gate, void* grad_up, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  GRPO_DISPATCH_FLOAT(dt, swiglu_bwd_kernel<scalar_t><<<grid_for(n), 256, 0, stream>>>(
                              static_cast<const scalar_t*>(grad), static_cast<const scalar_t*>(gate),
                              static_cast<const scalar_t*>(up), static_cast<scalar_t*>(grad_gate),
                              static_cast<scalar_t*>(grad_up), n));
  check_launch("swiglu_bwd");
}

}  // namespace grpo::kernels::cuda
