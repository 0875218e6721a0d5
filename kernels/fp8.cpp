// FP8 (e4m3) block quantisation, the FP8 GEMM and an FP8 linear layer (CPU reference, CUDA
// wrappers, autograd). Recipe of DeepSeek-V3 sec 3.3 (and DeepGEMM): activations in 1x128 tiles
// along the reduction dimension, weights in 128x128 blocks, float32 scale per tile = amax / 448,
// float32 accumulation promoted every 128 K-elements. The CPU GEMM dequantises and multiplies in
// float64, so it is the exact value the CUDA kernel approximates in float32.
#include "grpo/kernels/ops.h"
#include "op_util.h"

#ifdef GRPO_HAVE_CUDA_KERNELS
#include <cuda_runtime_api.h>
#endif

namespace grpo::kernels {
namespace {
using torch::Tensor;
constexpr int64_t kTile = 128;
constexpr double kE4m3Max = 448.0, kAmaxFloor = 1e-4;

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_quant(const Tensor& x, int64_t block_rows) {
  detail::check_float(x, "fp8_quantize", "x");
  TORCH_CHECK(x.dim() == 2, "grpo::fp8_quantize: x must be [rows, cols], got ", x.sizes());
  TORCH_CHECK(block_rows == 1 || block_rows == kTile,
              "grpo::fp8_quantize: block_rows must be 1 (1x128 tiles) or 128 (128x128 blocks), got ",
              block_rows);
}

// Scales broadcast back to [rows, cols]: tile (r / block_rows, c / 128).
Tensor expand_scale(const Tensor& scale, int64_t rows, int64_t cols, int64_t block_rows) {
  return scale.repeat_interleave(block_rows, 0).narrow(0, 0, rows)
      .repeat_interleave(kTile, 1).narrow(1, 0, cols);
}

std::tuple<Tensor, Tensor> quantize_cpu(const Tensor& x, int64_t block_rows) {
  check_quant(x, block_rows);
  const int64_t rows = x.size(0), cols = x.size(1);
  const int64_t rb = cdiv(rows, block_rows), kb = cdiv(cols, kTile);
  const Tensor xf = x.to(torch::kFloat);
  // Zero padding to whole tiles leaves every tile's amax unchanged.
  const Tensor padded = torch::constant_pad_nd(xf.abs(), {0, kb * kTile - cols, 0, rb * block_rows - rows});
  const Tensor amax = std::get<0>(std::get<0>(padded.view({rb, block_rows, kb, kTile}).max(3)).max(1));
  const Tensor scale = amax.clamp_min(kAmaxFloor) / kE4m3Max;  // [rb, kb] float32
  const Tensor q = (xf / expand_scale(scale, rows, cols, block_rows))
                       .clamp(-kE4m3Max, kE4m3Max)
                       .to(torch::kFloat8_e4m3fn);
  return {q, scale};
}

int64_t check_gemm(const Tensor& a, const Tensor& sa, const Tensor& b, const Tensor& sb,
                   torch::ScalarType out_dtype) {
  const char* op = "grpo::fp8_gemm: ";
  TORCH_CHECK(a.scalar_type() == torch::kFloat8_e4m3fn && b.scalar_type() == torch::kFloat8_e4m3fn,
              op, "a and b must be float8_e4m3fn, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), op,
              "a must be [M, K] and b [N, K], got ", a.sizes(), " and ", b.sizes());
  const int64_t m = a.size(0), n = b.size(0), kb = cdiv(a.size(1), kTile);
  TORCH_CHECK(sa.scalar_type() == torch::kFloat && sb.scalar_type() == torch::kFloat, op,
              "scales must be float32");
  TORCH_CHECK(sa.dim() == 2 && sa.size(0) == m && sa.size(1) == kb, op, "a_scale must be [", m,
              ", ", kb, "], got ", sa.sizes());
  TORCH_CHECK(sb.dim() == 2 && sb.size(1) == kb && (sb.size(0) == n || sb.size(0) == cdiv(n, kTile)),
              op, "b_scale must be [", cdiv(n, kTile), " or ", n, ", ", kb, "], got ", sb.sizes());
  TORCH_CHECK(out_dtype == torch::kFloat || out_dtype == torch::kBFloat16 ||
                  (out_dtype == torch::kDouble && a.is_cpu()),
              op, "out_dtype must be float32 or bfloat16, got ", out_dtype);
  TORCH_CHECK(a.device() == b.device() && a.device() == sa.device() && a.device() == sb.device(), op,
              "all operands must be on one device");
  return sb.size(0) == n ? 1 : kTile;  // n == 1 is both, and then they agree
}

Tensor gemm_cpu(const Tensor& a, const Tensor& sa, const Tensor& b, const Tensor& sb,
                torch::ScalarType out_dtype) {
  const int64_t b_rows = check_gemm(a, sa, b, sb, out_dtype);
  const int64_t m = a.size(0), n = b.size(0), k = a.size(1);
  const Tensor ad = a.to(torch::kDouble) * expand_scale(sa.to(torch::kDouble), m, k, 1);
  const Tensor bd = b.to(torch::kDouble) * expand_scale(sb.to(torch::kDouble), n, k, b_rows);
  return torch::matmul(ad, bd.t()).to(out_dtype);
}

#ifdef GRPO_HAVE_CUDA_KERNELS
std::tuple<Tensor, Tensor> quantize_cuda(const Tensor& x_, int64_t block_rows) {
  check_quant(x_, block_rows);
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto dt = detail::cuda_dtype(x_, "fp8_quantize");
  const Tensor x = x_.contiguous();
  const int64_t rows = x.size(0), cols = x.size(1);
  Tensor q = torch::empty({rows, cols}, x.options().dtype(torch::kFloat8_e4m3fn));
  Tensor scale = torch::empty({cdiv(rows, block_rows), cdiv(cols, kTile)},
                              x.options().dtype(torch::kFloat));
  cuda::launch_fp8_quantize(dt, x.data_ptr(), static_cast<uint8_t*>(q.data_ptr()),
                            scale.data_ptr<float>(), rows, cols, block_rows, detail::stream());
  return {q, scale};
}

Tensor gemm_cuda(const Tensor& a_, const Tensor& sa_, const Tensor& b_, const Tensor& sb_,
                 torch::ScalarType out_dtype) {
  const int64_t b_rows = check_gemm(a_, sa_, b_, sb_, out_dtype);
  const c10::cuda::CUDAGuard guard(a_.device());
  const Tensor a = a_.contiguous(), sa = sa_.contiguous(), b = b_.contiguous(), sb = sb_.contiguous();
  Tensor out = torch::empty({a.size(0), b.size(0)}, a.options().dtype(out_dtype));
  cuda::launch_fp8_gemm_nt(static_cast<const uint8_t*>(a.data_ptr()), sa.data_ptr<float>(),
                           static_cast<const uint8_t*>(b.data_ptr()), sb.data_ptr<float>(), b_rows,
                           out.data_ptr(),
                           out_dtype == torch::kFloat ? cuda::DType::F32 : cuda::DType::BF16,
                           a.size(0), b.size(0), a.size(1), detail::stream());
  return out;
}
#endif

using QuantSig = std::tuple<Tensor, Tensor>(const Tensor&, int64_t);
using GemmSig = Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, torch::ScalarType);

// y = x @ w^T with FP8 forward, input-gradient and weight-gradient GEMMs (DeepSeek-V3 Fig. 6).
struct Fp8LinearFn : torch::autograd::Function<Fp8LinearFn> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& w) {
    static auto quant = detail::op<QuantSig>("grpo::fp8_quantize");
    static auto gemm = detail::op<GemmSig>("grpo::fp8_gemm");
    TORCH_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1),
                "grpo::fp8_linear: x must be [..., K] and w [N, K], got ", x.sizes(), " and ",
                w.sizes());
    const Tensor x2 = x.reshape({-1, x.size(-1)});
    auto [qx, sx] = quant.call(x2, 1);
    auto [qw, sw] = quant.call(w, kTile);
    ctx->save_for_backward({x2, w});
    auto out_sizes = x.sizes().vec();
    out_sizes.back() = w.size(0);
    const auto out_dt = x.scalar_type() == torch::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
    return gemm.call(qx, sx, qw, sw, out_dt).to(x.scalar_type()).view(out_sizes);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto quant = detail::op<QuantSig>("grpo::fp8_quantize");
    static auto gemm = detail::op<GemmSig>("grpo::fp8_gemm");
    const auto s = ctx->get_saved_variables();
    const Tensor &x2 = s[0], &w = s[1];
    const Tensor gy = grads[0].reshape({-1, w.size(0)}).to(x2.scalar_type());
    const auto out_dt = x2.scalar_type() == torch::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
    // dx = dy @ w: dy in 1x128 tiles along N; w^T [K, N] in 128x128 blocks.
    auto [qg, sg] = quant.call(gy, 1);
    auto [qwt, swt] = quant.call(w.t().contiguous(), kTile);
    Tensor dx = gemm.call(qg, sg, qwt, swt, out_dt).to(x2.scalar_type());
    // dw = dy^T @ x: both in 1x128 tiles along the token dimension M.
    auto [qgt, sgt] = quant.call(gy.t().contiguous(), 1);
    auto [qxt, sxt] = quant.call(x2.t().contiguous(), 1);
    Tensor dw = gemm.call(qgt, sgt, qxt, sxt, out_dt).to(w.scalar_type());
    auto in_sizes = grads[0].sizes().vec();
    in_sizes.back() = x2.size(1);
    return {dx.view(in_sizes), dw};
  }
};

Tensor fp8_linear_composite(const Tensor& x, const Tensor& w) { return Fp8LinearFn::apply(x, w); }

}  // namespace

std::tuple<Tensor, Tensor> fp8_quantize_act(const Tensor& x) {
  static auto h = detail::op<QuantSig>("grpo::fp8_quantize");
  return h.call(x, 1);
}
std::tuple<Tensor, Tensor> fp8_quantize_weight(const Tensor& w) {
  static auto h = detail::op<QuantSig>("grpo::fp8_quantize");
  return h.call(w, kTile);
}
Tensor fp8_gemm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                torch::ScalarType out_dtype) {
  static auto h = detail::op<GemmSig>("grpo::fp8_gemm");
  return h.call(a, a_scale, b, b_scale, out_dtype);
}
int cuda_compute_capability(int64_t index) {
#ifdef GRPO_HAVE_CUDA_KERNELS
  int major = 0, minor = 0;
  const int dev = static_cast<int>(index);
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    (void)cudaGetLastError();  // reset the runtime error state so later calls do not report it
    return 0;
  }
  return major * 10 + minor;
#else
  (void)index;
  return 0;
#endif
}

Tensor fp8_linear(const Tensor& x, const Tensor& w) {
  static auto h = detail::op<Tensor(const Tensor&, const Tensor&)>("grpo::fp8_linear");
  return h.call(x, w);
}

}  // namespace grpo::kernels

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("fp8_linear", &grpo::kernels::fp8_linear_composite);
}
TORCH_LIBRARY_IMPL(grpo, CPU, m) {
  m.impl("fp8_quantize", &grpo::kernels::quantize_cpu);
  m.impl("fp8_gemm", &grpo::kernels::gemm_cpu);
}
#ifdef GRPO_HAVE_CUDA_KERNELS
TORCH_LIBRARY_IMPL(grpo, CUDA, m) {
  m.impl("fp8_quantize", &grpo::kernels::quantize_cuda);
  m.impl("fp8_gemm", &grpo::kernels::gemm_cuda);
}
#endif
