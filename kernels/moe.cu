// Mixture-of-experts kernels (reference: moe.cpp): permutation of token slots by expert, gather,
// grouped GEMM over experts, its weight gradient, and the router-weighted unpermutation. Expert
// counts never leave the device: the grouped GEMMs launch an upper bound of row tiles
// (ceil(M / 64) + E) and each block finds its (expert, tile) from the offsets. bfloat16 grouped
// GEMMs run on the tensor cores (nvcuda::wmma, float32 accumulation) unless GRPO_MOE_GEMM=simt;
// float32 ones, and the weight gradient, on CUDA cores.
#include <mma.h>

#include <cstdlib>
#include <cstring>

#include "cuda_common.cuh"

namespace grpo::kernels::cuda {
namespace {

constexpr int kChunk = 1024;  // slots per block in the permutation (32 warps)

__global__ void moe_hist_kernel(const int64_t* __restrict__ ids, int64_t m, int64_t num_experts,
                                int64_t* __restrict__ chunk_counts) {
  extern __shared__ int hist[];
  for (int64_t e = threadIdx.x; e < num_experts; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  const int64_t i = blockIdx.x * static_cast<int64_t>(kChunk) + threadIdx.x;
  if (i < m) {
    const int64_t e = ids[i];
    if (e >= 0 && e < num_experts) atomicAdd(&hist[e], 1);
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < num_experts; e += blockDim.x)
    chunk_counts[blockIdx.x * num_experts + e] = hist[e];
}

// offsets = exclusive scan of the expert totals; chunk_counts[c][e] becomes the first row of
// chunk c's slots of expert e.
__global__ void moe_scan_kernel(int64_t* __restrict__ chunk_counts, int64_t chunks,
                                int64_t num_experts, int64_t* __restrict__ offsets) {
  for (int64_t e = threadIdx.x; e < num_experts; e += blockDim.x) {
    int64_t total = 0;
    for (int64_t c = 0; c < chunks; ++c) total += chunk_counts[c * num_experts + e];
    offsets[e + 1] = total;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    for (int64_t e = 0; e < num_experts; ++e) offsets[e + 1] += offsets[e];
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < num_experts; e += blockDim.x) {
    int64_t run = offsets[e];
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t n = chunk_counts[c * num_experts + e];
      chunk_counts[c * num_experts + e] = run;
      run += n;
    }
  }
}

// Stable placement: warps of a chunk take turns in order; within a warp, lanes with the same
// expert (__match_any_sync) are ranked by lane, so the order within an expert is by slot.
__global__ void moe_scatter_kernel(const int64_t* __restrict__ ids, int64_t m, int64_t num_experts,
                                   const int64_t* __restrict__ chunk_base,
                                   int64_t* __restrict__ sorted_slots,
                                   int64_t* __restrict__ slot_rows) {
  extern __shared__ int64_t base[];
  for (int64_t e = threadIdx.x; e < num_experts; e += blockDim.x)
    base[e] = chunk_base[blockIdx.x * num_experts + e];
  __syncthreads();
  const int64_t i = blockIdx.x * static_cast<int64_t>(kChunk) + threadIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int e = -1;
  if (i < m) {
    const int64_t v = ids[i];
    if (v >= 0 && v < num_experts) e = static_cast<int>(v);
  }
  for (int w = 0; w < kChunk / 32; ++w) {
    if (warp == w) {
      const unsigned mask = __match_any_sync(0xffffffffu, e);
      if (e >= 0) {
        const int rank = __popc(mask & ((1u << lane) - 1u));
        const int64_t pos = base[e] + rank;
        sorted_slots[pos] = i;
        slot_rows[i] = pos;
      }
      __syncwarp();
      if (e >= 0 && lane == __ffs(mask) - 1) base[e] += __popc(mask);
    }
    __syncthreads();
  }
}

template <class T>
__global__ void moe_gather_kernel(const T* __restrict__ x, const int64_t* __restrict__ sorted_slots,
                                  const float* __restrict__ weights, T* __restrict__ out, int64_t d,
                                  int64_t topk) {
  const int64_t i = blockIdx.x, s = sorted_slots[i];
  const float w = weights ? weights[s] : 1.f;
  const T* src = x + (s / topk) * d;
  T* dst = out + i * d;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) dst[c] = from_f32<T>(w * to_f32(src[c]));
}

template <class T>
__global__ void moe_unpermute_kernel(const T* __restrict__ y, const int64_t* __restrict__ slot_rows,
                                     const float* __restrict__ weights, T* __restrict__ out,
                                     int64_t d, int64_t topk) {
  const int64_t t = blockIdx.x;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j < topk; ++j) {
      const int64_t s = t * topk + j;
      acc += (weights ? weights[s] : 1.f) * to_f32(y[slot_rows[s] * d + c]);
    }
    out[t * d + c] = from_f32<T>(acc);
  }
}

template <class T>
__global__ void moe_router_grad_kernel(const T* __restrict__ y, const int64_t* __restrict__ slot_rows,
                                       const T* __restrict__ grad_out, float* __restrict__ grad_w,
                                       int64_t d, int64_t topk) {
  __shared__ float scratch[32];
  const int64_t s = blockIdx.x;
  const T* yr = y + slot_rows[s] * d;
  const T* gr = grad_out + (s / topk) * d;
  float acc = 0.f;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) acc += to_f32(yr[c]) * to_f32(gr[c]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) grad_w[s] = acc;
}

constexpr int BM = 64, BN = 64, BK = 16, kGemmThreads = 256;

// Finds the (expert, first row, end row) of this block's row tile; false for surplus blocks.
__device__ bool find_tile(const int64_t* offsets, int64_t num_experts, int64_t tile, int64_t* e_out,
                          int64_t* row0, int64_t* row_end) {
  for (int64_t e = 0; e < num_experts; ++e) {
    const int64_t begin = offsets[e], end = offsets[e + 1];
    const int64_t tiles = (end - begin + BM - 1) / BM;
    if (tile < tiles) {
      *e_out = e;
      *row0 = begin + tile * BM;
      *row_end = end;
      return true;
    }
    tile -= tiles;
  }
  return false;
}

// out[i, j] = sum_r x[i, r] B_e(r, j);  B_e(r, j) = w[e][j][r] (trans_w) or w[e][r][j].
template <class T, bool TRANS>
__global__ void moe_gemm_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                const int64_t* __restrict__ offsets, T* __restrict__ out,
                                int64_t cols, int64_t red, int64_t num_experts) {
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  __shared__ int64_t tile_info[3];
  if (threadIdx.x == 0) {
    int64_t e, r0, re;
    const bool ok = find_tile(offsets, num_experts, blockIdx.x, &e, &r0, &re);
    tile_info[0] = ok ? e : -1;
    tile_info[1] = r0;
    tile_info[2] = re;
  }
  __syncthreads();
  const int64_t e = tile_info[0];
  if (e < 0) return;
  const int64_t row0 = tile_info[1], row_end = tile_info[2];
  const int64_t col0 = blockIdx.y * static_cast<int64_t>(BN);
  const T* we = w + e * cols * red;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  float acc[4][4] = {};
  for (int64_t r0 = 0; r0 < red; r0 += BK) {
    for (int q = 0; q < (BM * BK) / kGemmThreads; ++q) {
      const int idx = tid + q * kGemmThreads;
      const int mm = idx / BK, kk = idx % BK;
      const int64_t row = row0 + mm, r = r0 + kk;
      As[kk][mm] = (row < row_end && r < red) ? to_f32(x[row * red + r]) : 0.f;
      int nn, kb;
      if (TRANS) {
        nn = idx / BK, kb = idx % BK;
      } else {
        nn = idx % BN, kb = idx / BN;
      }
      const int64_t col = col0 + nn, rb = r0 + kb;
      float bv = 0.f;
      if (col < cols && rb < red) bv = to_f32(TRANS ? we[col * red + rb] : we[rb * cols + col]);
      Bs[kb][nn] = bv;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i) {
    const int64_t row = row0 + ty * 4 + i;
    if (row >= row_end) continue;
    for (int j = 0; j < 4; ++j) {
      const int64_t col = col0 + tx * 4 + j;
      if (col < cols) out[row * cols + col] = from_f32<T>(acc[i][j]);
    }
  }
}

// grad_w[e, n, k] = sum over rows i of expert e of gy[i, n] x[i, k]; grid (N/64, K/64, E).
template <class T>
__global__ void moe_wgrad_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                 const int64_t* __restrict__ offsets, float* __restrict__ grad_w,
                                 int64_t n, int64_t k) {
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  const int64_t e = blockIdx.z, begin = offsets[e], end = offsets[e + 1];
  const int64_t n0 = blockIdx.x * static_cast<int64_t>(BM), k0 = blockIdx.y * static_cast<int64_t>(BN);
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  float acc[4][4] = {};
  for (int64_t i0 = begin; i0 < end; i0 += BK) {
    for (int q = 0; q < (BM * BK) / kGemmThreads; ++q) {
      const int idx = tid + q * kGemmThreads;
      const int cc = idx % BM, ii = idx / BM;
      const int64_t i = i0 + ii;
      As[ii][cc] = (i < end && n0 + cc < n) ? to_f32(gy[i * n + n0 + cc]) : 0.f;
      Bs[ii][cc] = (i < end && k0 + cc < k) ? to_f32(x[i * k + k0 + cc]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int ii = 0; ii < BK; ++ii) {
      float a[4], b[4];
#pragma unroll
      for (int p = 0; p < 4; ++p) a[p] = As[ii][ty * 4 + p];
#pragma unroll
      for (int p = 0; p < 4; ++p) b[p] = Bs[ii][tx * 4 + p];
#pragma unroll
      for (int p = 0; p < 4; ++p)
#pragma unroll
        for (int q2 = 0; q2 < 4; ++q2) acc[p][q2] += a[p] * b[q2];
    }
    __syncthreads();
  }
  float* ge = grad_w + e * n * k;
  for (int p = 0; p < 4; ++p) {
    const int64_t nn = n0 + ty * 4 + p;
    if (nn >= n) continue;
    for (int q2 = 0; q2 < 4; ++q2) {
      const int64_t kk = k0 + tx * 4 + q2;
      if (kk < k) ge[nn * k + kk] = acc[p][q2];
    }
  }
}


// Tensor-core grouped GEMM for bfloat16: 4 warps (2x2), each a 32x32 piece of the 64x64 tile.
constexpr int WBK = 32, kWThreads = 128, kLdAB = WBK + 8, kLdC = BN + 4;

template <bool TRANS>
__global__ void __launch_bounds__(kWThreads)
    moe_gemm_wmma_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                         const int64_t* __restrict__ offsets, __nv_bfloat16* __restrict__ out,
                         int64_t cols, int64_t red, int64_t num_experts) {
  using namespace nvcuda;
  __shared__ __align__(32) __nv_bfloat16 As[BM][kLdAB];  // (row, r) row-major
  __shared__ __align__(32) __nv_bfloat16 Bs[BN][kLdAB];  // (col, r): B col-major
  __shared__ __align__(32) float Cs[BM][kLdC];
  __shared__ int64_t tile_info[3];
  if (threadIdx.x == 0) {
    int64_t e, r0, re;
    const bool ok = find_tile(offsets, num_experts, blockIdx.x, &e, &r0, &re);
    tile_info[0] = ok ? e : -1;
    tile_info[1] = r0;
    tile_info[2] = re;
  }
  __syncthreads();
  const int64_t e = tile_info[0];
  if (e < 0) return;
  const int64_t row0 = tile_info[1], row_end = tile_info[2];
  const int64_t col0 = blockIdx.y * static_cast<int64_t>(BN);
  const __nv_bfloat16* we = w + e * cols * red;
  const __nv_bfloat16 zero = __float2bfloat16_rn(0.f);
  const int tid = threadIdx.x, warp = tid / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> cf[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(cf[i][j], 0.f);
  for (int64_t r0 = 0; r0 < red; r0 += WBK) {
#pragma unroll 4
    for (int q = 0; q < (BM * WBK) / kWThreads; ++q) {
      const int idx = tid + q * kWThreads;
      {
        const int rr = idx / WBK, kk = idx % WBK;
        const int64_t row = row0 + rr, r = r0 + kk;
        As[rr][kk] = (row < row_end && r < red) ? x[row * red + r] : zero;
      }
      int jj, kk;
      if (TRANS) {
        jj = idx / WBK, kk = idx % WBK;
      } else {
        jj = idx % BN, kk = idx / BN;
      }
      const int64_t col = col0 + jj, r = r0 + kk;
      Bs[jj][kk] = (col < cols && r < red) ? (TRANS ? we[col * red + r] : we[r * cols + col]) : zero;
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
  for (int q = 0; q < BM * BN / kWThreads; ++q) {
    const int idx = tid + q * kWThreads, r = idx / BN, c = idx % BN;
    const int64_t row = row0 + r, col = col0 + c;
    if (row < row_end && col < cols) out[row * cols + col] = __float2bfloat16_rn(Cs[r][c]);
  }
}

bool use_simt_moe_gemm() {
  const char* v = std::getenv("GRPO_MOE_GEMM");
  return v && std::strcmp(v, "simt") == 0;
}
}  // namespace

int64_t moe_permute_workspace_ints(int64_t m, int64_t num_experts) {
  return ceil_div(m > 0 ? m : 1, kChunk) * num_experts;
}

void launch_moe_permute(const int64_t* expert_ids, int64_t m, int64_t num_experts,
                        int64_t* sorted_slots, int64_t* slot_rows, int64_t* offsets,
                        int64_t* workspace, cudaStream_t stream) {
  const int64_t chunks = ceil_div(m > 0 ? m : 1, kChunk);
  moe_hist_kernel<<<chunks, kChunk, num_experts * sizeof(int), stream>>>(expert_ids, m, num_experts,
                                                                        workspace);
  check_launch("moe_permute/hist");
  moe_scan_kernel<<<1, 1024, 0, stream>>>(workspace, chunks, num_experts, offsets);
  check_launch("moe_permute/scan");
  moe_scatter_kernel<<<chunks, kChunk, num_experts * sizeof(int64_t), stream>>>(
      expert_ids, m, num_experts, workspace, sorted_slots, slot_rows);
  check_launch("moe_permute/scatter");
}

void launch_moe_gather(DType dt, const void* x, const int64_t* sorted_slots, const float* weights,
                       void* out, int64_t m, int64_t d, int64_t topk, cudaStream_t stream) {
  if (m == 0 || d == 0) return;
  GRPO_DISPATCH_FLOAT(dt, moe_gather_kernel<scalar_t><<<m, 256, 0, stream>>>(
                              static_cast<const scalar_t*>(x), sorted_slots, weights,
                              static_cast<scalar_t*>(out), d, topk));
  check_launch("moe_gather");
}

void launch_moe_unpermute(DType dt, const void* y, const int64_t* slot_rows, const float* weights,
                          void* out, int64_t tokens, int64_t d, int64_t topk, cudaStream_t stream) {
  if (tokens == 0 || d == 0) return;
  GRPO_DISPATCH_FLOAT(dt, moe_unpermute_kernel<scalar_t><<<tokens, 256, 0, stream>>>(
                              static_cast<const scalar_t*>(y), slot_rows, weights,
                              static_cast<scalar_t*>(out), d, topk));
  check_launch("moe_unpermute");
}

void launch_moe_router_grad(DType dt, const void* y, const int64_t* slot_rows, const void* grad_out,
                            float* grad_w, int64_t m, int64_t d, int64_t topk, cudaStream_t stream) {
  if (m == 0) return;
  GRPO_DISPATCH_FLOAT(dt, moe_router_grad_kernel<scalar_t><<<m, 256, 0, stream>>>(
                              static_cast<const scalar_t*>(y), slot_rows,
                              static_cast<const scalar_t*>(grad_out), grad_w, d, topk));
  check_launch("moe_router_grad");
}

void launch_moe_grouped_gemm(DType dt, const void* x, const void* w, const int64_t* offsets,
                             void* out, int64_t m, int64_t out_cols, int64_t red,
                             int64_t num_experts, bool trans_w, cudaStream_t stream) {
  if (m == 0 || out_cols == 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(m, BM) + num_experts),
                  static_cast<unsigned>(ceil_div(out_cols, BN)));
  if (dt == DType::BF16 && !use_simt_moe_gemm()) {
    auto xs = static_cast<const __nv_bfloat16*>(x);
    auto ws = static_cast<const __nv_bfloat16*>(w);
    auto os = static_cast<__nv_bfloat16*>(out);
    if (trans_w)
      moe_gemm_wmma_kernel<true><<<grid, kWThreads, 0, stream>>>(xs, ws, offsets, os, out_cols, red,
                                                                  num_experts);
    else
      moe_gemm_wmma_kernel<false><<<grid, kWThreads, 0, stream>>>(xs, ws, offsets, os, out_cols,
                                                                   red, num_experts);
    check_launch("moe_grouped_gemm");
    return;
  }
  GRPO_DISPATCH_FLOAT(dt, {
    auto xs = static_cast<const scalar_t*>(x);
    auto ws = static_cast<const scalar_t*>(w);
    auto os = static_cast<scalar_t*>(out);
    if (trans_w)
      moe_gemm_kernel<scalar_t, true><<<grid, kGemmThreads, 0, stream>>>(xs, ws, offsets, os, out_cols,
                                                                          red, num_experts);
    else
      moe_gemm_kernel<scalar_t, false><<<grid, kGemmThreads, 0, stream>>>(xs, ws, offsets, os,
                                                                           out_cols, red, num_experts);
  });
  check_launch("moe_grouped_gemm");
}

void launch_moe_grouped_wgrad(DType dt, const void* gy, const void* x, const int64_t* offsets,
                              float* grad_w, int64_t m, int64_t n, int64_t k, int64_t num_experts,
                              cudaStream_t stream) {
  (void)m;
  if (n == 0 || k == 0 || num_experts == 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(n, BM)), static_cast<unsigned>(ceil_div(k, BN)),
                  static_cast<unsigned>(num_experts));
  GRPO_DISPATCH_FLOAT(dt, moe_wgrad_kernel<scalar_t><<<grid, kGemmThreads, 0, stream>>>(
                              static_cast<const scalar_t*>(gy), static_cast<const scalar_t*>(x),
                              offsets, grad_w, n, k));
  check_launch("moe_grouped_wgrad");
}

}  // namespace grpo::kernels::cuda
