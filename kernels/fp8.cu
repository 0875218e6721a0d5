// FP8 e4m3 quantisation (1x128 tiles / 128x128 blocks, float32 scales) and the FP8 "NT" GEMM with
// float32 accumulation promoted every 128 K-elements (DeepSeek-V3 sec 3.3; reference: fp8.cpp).
// Two GEMM kernels with the DeepGEMM promotion structure (a partial sum per 128-wide K block,
// scaled by sa[m, kb] * sb[n, kb] and added to a float32 accumulator):
//  - "wmma" (default): e4m3 -> bf16 in shared memory (exact: e4m3 values are bf16 values), bf16
//    tensor-core MMA (nvcuda::wmma, sm_80+) with float32 accumulation per K block;
//  - "simt" (GRPO_FP8_GEMM=simt): the same on CUDA cores in float32, the simplest formulation.
// Both are exact up to float32 accumulation. Neither uses Hopper's FP8 wgmma yet.
#include <cuda_fp8.h>
#include <mma.h>

#include <cstdlib>
#include <cstring>

#include "cuda_common.cuh"

namespace grpo::kernels::cuda {
namespace {

constexpr float kE4m3Max = 448.f;
constexpr float kAmaxFloor = 1e-4f;  // DeepGEMM's clamp: all-zero tiles get a finite scale
constexpr int kTile = 128;

__device__ __forceinline__ float e4m3_to_f32(uint8_t b) {
  __nv_fp8_e4m3 v;
  v.__x = b;
  return static_cast<float>(v);
}

// One block per (row block, 128-column tile): amax, scale = amax / 448, q = e4m3(x / scale).
template <class T>
__global__ void fp8_quantize_kernel(const T* __restrict__ x, uint8_t* __restrict__ q,
                                    float* __restrict__ scale, int64_t rows, int64_t cols,
                                    int64_t block_rows) {
  __shared__ float scratch[32];
  const int64_t rb = blockIdx.x, kb = blockIdx.y;
  const int64_t r0 = rb * block_rows, c0 = kb * kTile;
  const int64_t nr = min(block_rows, rows - r0), nc = min(static_cast<int64_t>(kTile), cols - c0);
  float amax = 0.f;
  for (int64_t i = threadIdx.x; i < nr * kTile; i += blockDim.x) {
    const int64_t r = i / kTile, c = i % kTile;
    if (c < nc) amax = fmaxf(amax, fabsf(to_f32(x[(r0 + r) * cols + c0 + c])));
  }
  amax = warp_max(amax);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = amax;
  __syncthreads();
  amax = (threadIdx.x & 31) < (blockDim.x >> 5) ? scratch[threadIdx.x & 31] : 0.f;
  amax = warp_max(amax);
  const float s = fmaxf(amax, kAmaxFloor) / kE4m3Max;
  if (threadIdx.x == 0) scale[rb * gridDim.y + kb] = s;
  for (int64_t i = threadIdx.x; i < nr * kTile; i += blockDim.x) {
    const int64_t r = i / kTile, c = i % kTile;
    if (c < nc) {
      const int64_t o = (r0 + r) * cols + c0 + c;
      q[o] = __nv_cvt_float_to_fp8(to_f32(x[o]) / s, __NV_SATFINITE, __NV_E4M3);
    }
  }
}

constexpr int BM = 64, BN = 64, BK = 32, kThreads = 256;

template <class TOut>
__global__ void fp8_gemm_nt_kernel(const uint8_t* __restrict__ a, const float* __restrict__ sa,
                                   const uint8_t* __restrict__ b, const float* __restrict__ sb,
                                   int64_t b_block_rows, TOut* __restrict__ out, int64_t m,
                                   int64_t n, int64_t k) {
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  const int64_t m0 = blockIdx.y * static_cast<int64_t>(BM), n0 = blockIdx.x * static_cast<int64_t>(BN);
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int64_t kblocks = (k + kTile - 1) / kTile;
  float acc[4][4] = {};
  for (int64_t kb = 0; kb < kblocks; ++kb) {
    float part[4][4] = {};
    const int64_t kend = min(k, (kb + 1) * kTile);
    for (int64_t k0 = kb * kTile; k0 < kend; k0 += BK) {
      for (int q = 0; q < (BM * BK) / kThreads; ++q) {
        const int idx = tid + q * kThreads;
        const int rr = idx / BK, kk = idx % BK;
        const int64_t kc = k0 + kk;
        const int64_t ar = m0 + rr, br = n0 + rr;
        As[kk][rr] = (ar < m && kc < kend) ? e4m3_to_f32(a[ar * k + kc]) : 0.f;
        Bs[kk][rr] = (br < n && kc < kend) ? e4m3_to_f32(b[br * k + kc]) : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) av[i] = As[kk][ty * 4 + i];
#pragma unroll
        for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx * 4 + j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) part[i][j] += av[i] * bv[j];
      }
      __syncthreads();
    }
    // Promotion: scale this K block's partial sums and add them to the float32 accumulator.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = min(m0 + ty * 4 + i, m - 1);
      const float s_a = sa[row * kblocks + kb];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t col = min(n0 + tx * 4 + j, n - 1);
        acc[i][j] += part[i][j] * s_a * sb[(col / b_block_rows) * kblocks + kb];
      }
    }
  }
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + ty * 4 + i;
    if (row >= m) continue;
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tx * 4 + j;
      if (col < n) out[row * n + col] = from_f32<TOut>(acc[i][j]);
    }
  }
}


// Tensor-core variant: 4 warps in a 2x2 arrangement, each owning a 32x32 piece of the 64x64 tile
// as 2x2 wmma 16x16 fragments. After each 128-wide K block the fragments go through shared
// memory so that every element can be scaled by its row's and column's scales (promotion).
constexpr int WBK = 32, kWThreads = 128, kLdAB = WBK + 8, kLdC = BN + 4;

template <class TOut>
__global__ void __launch_bounds__(kWThreads)
    fp8_gemm_nt_wmma_kernel(const uint8_t* __restrict__ a, const float* __restrict__ sa,
                            const uint8_t* __restrict__ b, const float* __restrict__ sb,
                            int64_t b_block_rows, TOut* __restrict__ out, int64_t m, int64_t n,
                            int64_t k) {
  using namespace nvcuda;
  __shared__ __align__(32) __nv_bfloat16 As[BM][kLdAB];  // (m, k), row-major
  __shared__ __align__(32) __nv_bfloat16 Bs[BN][kLdAB];  // (n, k): B^T row-major = B col-major
  __shared__ __align__(32) float Cs[BM][kLdC];   // this K block's partial sums
  __shared__ __align__(32) float Acc[BM][kLdC];  // the float32 accumulator (registers would spill)
  const int tid = threadIdx.x, warp = tid / 32, wm = warp / 2, wn = warp % 2;
  const int64_t m0 = blockIdx.y * static_cast<int64_t>(BM), n0 = blockIdx.x * static_cast<int64_t>(BN);
  const int64_t kblocks = (k + kTile - 1) / kTile;
  constexpr int kPer = BM * BN / kWThreads;  // 32 output elements per thread: e = tid + 128 j
  for (int j = 0; j < kPer; ++j) {
    const int e = tid + kWThreads * j;
    Acc[e / BN][e % BN] = 0.f;  // each thread only ever touches its own elements of Acc
  }
  for (int64_t kb = 0; kb < kblocks; ++kb) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> cf[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(cf[i][j], 0.f);
    const int64_t kend = min(k, (kb + 1) * kTile);
    for (int64_t k0 = kb * kTile; k0 < kend; k0 += WBK) {
#pragma unroll 4
      for (int q = 0; q < (BM * WBK) / kWThreads; ++q) {
        const int idx = tid + q * kWThreads;
        const int rr = idx / WBK, kk = idx % WBK;
        const int64_t kc = k0 + kk, ar = m0 + rr, br = n0 + rr;
        As[rr][kk] = __float2bfloat16_rn((ar < m && kc < kend) ? e4m3_to_f32(a[ar * k + kc]) : 0.f);
        Bs[rr][kk] = __float2bfloat16_rn((br < n && kc < kend) ? e4m3_to_f32(b[br * k + kc]) : 0.f);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < WBK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(af[i], &As[wm * 32 + i * 16][kk], kLdAB);
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(bf[j], &Bs[wn * 32 + j * 16][kk], kLdAB);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(cf[i][j], af[i], bf[j], cf[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + j * 16], cf[i][j], kLdC,
                                wmma::mem_row_major);
    __syncthreads();
    for (int j = 0; j < kPer; ++j) {
      const int e = tid + kWThreads * j, r = e / BN, c = e % BN;
      const int64_t row = min(m0 + r, m - 1), col = min(n0 + c, n - 1);
      Acc[r][c] += Cs[r][c] * sa[row * kblocks + kb] * sb[(col / b_block_rows) * kblocks + kb];
    }
    __syncthreads();
  }
  for (int j = 0; j < kPer; ++j) {
    const int e = tid + kWThreads * j, r = e / BN, c = e % BN;
    const int64_t row = m0 + r, col = n0 + c;
    if (row < m && col < n) out[row * n + col] = from_f32<TOut>(Acc[r][c]);
  }
}

bool use_simt_gemm() {
  const char* v = std::getenv("GRPO_FP8_GEMM");
  return v && std::strcmp(v, "simt") == 0;
}
}  // namespace

void launch_fp8_quantize(DType dt, const void* x, uint8_t* q, float* scale, int64_t rows,
                         int64_t cols, int64_t block_rows, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(rows, block_rows)),
                  static_cast<unsigned>(ceil_div(cols, kTile)));
  const int threads = block_rows == 1 ? 128 : 256;
  GRPO_DISPATCH_FLOAT(dt, fp8_quantize_kernel<scalar_t><<<grid, threads, 0, stream>>>(
                              static_cast<const scalar_t*>(x), q, scale, rows, cols, block_rows));
  check_launch("fp8_quantize");
}

void launch_fp8_gemm_nt(const uint8_t* a, const float* a_scale, const uint8_t* b,
                        const float* b_scale, int64_t b_block_rows, void* out, DType out_dt,
                        int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(n, BN)), static_cast<unsigned>(ceil_div(m, BM)));
  if (use_simt_gemm()) {
    GRPO_DISPATCH_FLOAT(out_dt, fp8_gemm_nt_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(
                                    a, a_scale, b, b_scale, b_block_rows,
                                    static_cast<scalar_t*>(out), m, n, k));
  } else {
    GRPO_DISPATCH_FLOAT(out_dt, fp8_gemm_nt_wmma_kernel<scalar_t><<<grid, kWThreads, 0, stream>>>(
                                    a, a_scale, b, b_scale, b_block_rows,
                                    static_cast<scalar_t*>(out), m, n, k));
  }
  check_launch("fp8_gemm_nt");
}

}  // namespace grpo::kernels::cuda
