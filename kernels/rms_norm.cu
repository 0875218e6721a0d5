// RMSNorm forward/backward, optionally fused with the residual add (reference: rms_norm.cpp).
// One block per row; float32 accumulation whatever the storage dtype.
#include "cuda_common.cuh"

namespace grpo::kernels::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void rms_norm_fwd_kernel(const T* __restrict__ x, const T* __restrict__ residual,
                                    const T* __restrict__ weight, T* __restrict__ y,
                                    T* __restrict__ h_out, float* __restrict__ rstd, int64_t cols,
                                    float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  float ss = 0.f;
  if (residual) {
    // h is rounded to T before it is normalised: the unfused model stores h in T too.
    const T* rr = residual + row * cols;
    T* hr = h_out + row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      T hv = from_f32<T>(to_f32(xr[c]) + to_f32(rr[c]));
      hr[c] = hv;
      float f = to_f32(hv);
      ss += f * f;
    }
    xr = hr;  // each thread re-reads only the elements it wrote itself
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float f = to_f32(xr[c]);
      ss += f * f;
    }
  }
  ss = block_sum(ss, scratch);
  const float r = rsqrtf(ss / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  T* yr = y + row * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    yr[c] = from_f32<T>(to_f32(xr[c]) * r * to_f32(weight[c]));
}

// grad_h = r (dn - n mean(dn n)), dn = grad_y * w, n = h r  (+ grad_h_extra)
// grad_w_partial[block, c] = sum over this block's rows of grad_y * n.
template <class T>
__global__ void rms_norm_bwd_kernel(const T* __restrict__ grad_y, const T* __restrict__ grad_h_extra,
                                    const T* __restrict__ h, const T* __restrict__ weight,
                                    const float* __restrict__ rstd, T* __restrict__ grad_h,
                                    float* __restrict__ grad_w_partial, int64_t rows,
                                    int64_t cols) {
  __shared__ float scratch[32];
  float* gw = grad_w_partial + blockIdx.x * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) gw[c] = 0.f;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* gy = grad_y + row * cols;
    const T* hr = h + row * cols;
    const float r = rstd[row];
    float dot = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float g = to_f32(gy[c]);
      float n = to_f32(hr[c]) * r;
      dot += g * to_f32(weight[c]) * n;
      gw[c] += g * n;
    }
    dot = block_sum(dot, scratch) / static_cast<float>(cols);
    T* gh = grad_h + row * cols;
    const T* ge = grad_h_extra ? grad_h_extra + row * cols : nullptr;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float n = to_f32(hr[c]) * r;
      float v = r * (to_f32(gy[c]) * to_f32(weight[c]) - n * dot);
      if (ge) v += to_f32(ge[c]);
      gh[c] = from_f32<T>(v);
    }
  }
}

}  // namespace

void launch_rms_norm_fwd(DType dt, const void* x, const void* residual, const void* weight, void* y,
                         void* h_out, float* rstd, int64_t rows, int64_t cols, float eps,
                         cudaStream_t stream) {
  if (rows == 0) return;
  GRPO_DISPATCH_FLOAT(dt, rms_norm_fwd_kernel<scalar_t><<<rows, kThreads, 0, stream>>>(
                              static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(residual),
                              static_cast<const scalar_t*>(weight), static_cast<scalar_t*>(y),
                              static_cast<scalar_t*>(h_out), rstd, cols, eps));
  check_launch("rms_norm_fwd");
}

int64_t rms_norm_bwd_row_blocks(int64_t rows) { return rows < 1024 ? (rows > 0 ? rows : 1) : 1024; }

void launch_rms_norm_bwd(DType dt, const void* grad_y, const void* grad_h_extra, const void* h,
                         const void* weight, const float* rstd, void* grad_h, float* grad_w_partial,
                         int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t blocks = rms_norm_bwd_row_blocks(rows);
  GRPO_DISPATCH_FLOAT(dt, rms_norm_bwd_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
                              static_cast<const scalar_t*>(grad_y),
                              static_cast<const scalar_t*>(grad_h_extra),
                              static_cast<const scalar_t*>(h), static_cast<const scalar_t*>(weight),
                              rstd, static_cast<scalar_t*>(grad_h), grad_w_partial, rows, cols));
  check_launch("rms_norm_bwd");
}

}  // namespace grpo::kernels::cuda
