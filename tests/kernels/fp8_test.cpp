// FP8: quantisation vs a float64 simulation of e4m3 round-to-nearest-even (bit-exact), the FP8
// GEMM vs float64 dequantise-and-multiply and vs a bfloat16 GEMM of the unquantised operands
// (DeepGEMM's acceptance: calc_diff < 1e-3), and the FP8 linear layer's three GEMMs.
#include <cmath>
#include <cstdlib>

#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

// e4m3 (OCP FP8, "fn": no inf, max 448, 3 mantissa bits, min normal 2^-6, subnormal step 2^-9),
// round to nearest even, saturating at 448: the rounding our kernels are specified to do.
double e4m3_round(double v) {
  if (v == 0 || std::isnan(v)) return v;
  const double a = std::fabs(v);
  int ex = 0;
  std::frexp(a, &ex);                      // a = f 2^ex, f in [0.5, 1)
  const int e = std::max(ex - 1, -6);      // exponent of the leading bit; subnormals share 2^-6
  const double step = std::ldexp(1.0, e - 3);
  double r = std::nearbyint(a / step) * step;  // default rounding mode: ties to even
  r = std::min(r, 448.0);
  return std::copysign(r, v);
}

// Independent quantiser in float64 (given the scale convention amax / 448, floor 1e-4).
std::pair<torch::Tensor, torch::Tensor> simulate(const torch::Tensor& x, int64_t block_rows) {
  auto xf = x.to(torch::kCPU, torch::kFloat);
  const int64_t rows = xf.size(0), cols = xf.size(1);
  const int64_t rb = (rows + block_rows - 1) / block_rows, kb = (cols + 127) / 128;
  auto scale = torch::empty({rb, kb}, torch::kFloat);
  auto deq = torch::empty({rows, cols}, torch::kDouble);
  auto xa = xf.accessor<float, 2>();
  auto sa = scale.accessor<float, 2>();
  auto da = deq.accessor<double, 2>();
  for (int64_t i = 0; i < rb; ++i)
    for (int64_t j = 0; j < kb; ++j) {
      float amax = 0;
      for (int64_t r = i * block_rows; r < std::min(rows, (i + 1) * block_rows); ++r)
        for (int64_t c = j * 128; c < std::min(cols, (j + 1) * 128); ++c) amax = std::max(amax, std::fabs(xa[r][c]));
      const float s = std::max(amax, 1e-4f) / 448.0f;  // float32 like the op's scale tensor
      sa[i][j] = s;
      for (int64_t r = i * block_rows; r < std::min(rows, (i + 1) * block_rows); ++r)
        for (int64_t c = j * 128; c < std::min(cols, (j + 1) * 128); ++c)
          da[r][c] = e4m3_round(static_cast<double>(xa[r][c] / s)) * s;  // x / s in float32
    }
  return {deq, scale};
}

torch::Tensor dequant(const torch::Tensor& q, const torch::Tensor& s, int64_t block_rows) {
  auto qd = q.cpu().to(torch::kDouble);
  auto sd = s.cpu().to(torch::kDouble).repeat_interleave(block_rows, 0).narrow(0, 0, q.size(0))
                .repeat_interleave(128, 1).narrow(1, 0, q.size(1));
  return qd * sd;
}

void check_quantize(torch::Device dev, torch::ScalarType dt) {
  torch::manual_seed(41);
  // 200 x 300: neither dimension a multiple of 128; wide dynamic range across rows, and one
  // all-zero tile to exercise the amax floor.
  auto x = (torch::randn({200, 300}, torch::kDouble) * torch::exp(torch::randn({200, 1}, torch::kDouble) * 3));
  x.narrow(0, 0, 1).zero_();
  auto xin = x.to(dev, dt);
  for (int64_t br : {int64_t{1}, int64_t{128}}) {
    if (dev.is_cuda()) poison_cuda();
    auto [q, s] = br == 1 ? fp8_quantize_act(xin) : fp8_quantize_weight(xin);
    EXPECT_EQ(q.scalar_type(), torch::kFloat8_e4m3fn);
    auto [ref, sref] = simulate(xin, br);
    EXPECT_TRUE(torch::equal(s.cpu(), sref)) << "block_rows " << br;
    auto got = dequant(q, s, br);
    EXPECT_EQ((got - ref).abs().max().item<double>(), 0.0) << "block_rows " << br;
  }
}

TEST(Fp8Cpu, SimulatorKnownValues) {  // hand-checked e4m3 values
  EXPECT_EQ(e4m3_round(448.0), 448.0);
  EXPECT_EQ(e4m3_round(1000.0), 448.0);
  EXPECT_EQ(e4m3_round(1.0625), 1.0);     // tie between 1 and 1.125 -> even (1.0)
  EXPECT_EQ(e4m3_round(1.1875), 1.25);    // tie between 1.125 and 1.25 -> even (1.25)
  EXPECT_EQ(e4m3_round(std::ldexp(1.0, -9)), std::ldexp(1.0, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_round(std::ldexp(1.0, -11)), 0.0);
  EXPECT_EQ(e4m3_round(-3.3), -3.25);
}
TEST(Fp8Cpu, QuantizeFloat32MatchesE4m3Simulation) { check_quantize(torch::kCPU, torch::kFloat); }
TEST(Fp8Cpu, QuantizeBfloat16MatchesE4m3Simulation) { check_quantize(torch::kCPU, torch::kBFloat16); }

void check_gemm(torch::Device dev) {
  torch::manual_seed(43);
  const int64_t m = 77, n = 150, k = 300;
  auto a = torch::randn({m, k}, torch::kDouble).to(dev, torch::kBFloat16);
  auto b = torch::randn({n, k}, torch::kDouble).to(dev, torch::kBFloat16);
  auto [qa, sa] = fp8_quantize_act(a);
  auto [qb, sb] = fp8_quantize_weight(b);
  auto [qb1, sb1] = fp8_quantize_act(b);
  if (dev.is_cuda()) poison_cuda();
  auto out = fp8_gemm(qa, sa, qb, sb, torch::kFloat);
  auto out1 = fp8_gemm(qa, sa, qb1, sb1, torch::kBFloat16);
  auto exact = torch::matmul(dequant(qa, sa, 1), dequant(qb, sb, 128).t());
  auto exact1 = torch::matmul(dequant(qa, sa, 1), dequant(qb1, sb1, 1).t());
  // float32 accumulation over K = 300 (3 promotions) of products of float32-exact values.
  EXPECT_LE(rel_err(out, exact), 1e-5);
  EXPECT_LE(rel_err(out1, exact1), 1e-2);  // bfloat16 output rounding
  // DeepGEMM's acceptance test against the bfloat16 GEMM of the unquantised operands.
  auto bf = torch::matmul(a.to(torch::kFloat), b.to(torch::kFloat).t());
  EXPECT_LT(calc_diff(out, bf), 1e-3);
  EXPECT_LT(calc_diff(out1, bf), 1e-3);
}
TEST(Fp8Cpu, GemmMatchesFloat64AndBf16) { check_gemm(torch::kCPU); }

void check_linear(torch::Device dev) {
  torch::manual_seed(47);
  auto x0 = torch::randn({3, 43, 260}, torch::kDouble), w0 = 0.05 * torch::randn({190, 260}, torch::kDouble);
  auto gy = torch::randn({3, 43, 190}, torch::kDouble);
  auto xd = x0.clone().requires_grad_(), wd = w0.clone().requires_grad_();
  auto yd = torch::matmul(xd, wd.t());
  (yd * gy).sum().backward();
  if (dev.is_cuda()) poison_cuda();
  auto x = x0.to(dev, torch::kBFloat16).requires_grad_(), w = w0.to(dev, torch::kBFloat16).requires_grad_();
  auto y = fp8_linear(x, w);
  EXPECT_EQ(y.sizes(), yd.sizes());
  y.backward(gy.to(dev, torch::kBFloat16));
  EXPECT_LT(calc_diff(y, yd), 1e-3);
  EXPECT_LT(calc_diff(x.grad(), xd.grad()), 1e-3);
  EXPECT_LT(calc_diff(w.grad(), wd.grad()), 1e-3);
}
TEST(Fp8Cpu, LinearForwardAndGradientsWithinDeepGemmError) { check_linear(torch::kCPU); }

TEST(Fp8Cpu, RejectsBadOperands) {
  auto [q, s] = fp8_quantize_act(torch::randn({4, 130}));
  EXPECT_THROW(fp8_gemm(q, s, q, s.narrow(1, 0, 1), torch::kFloat), c10::Error);
  EXPECT_THROW(fp8_gemm(q.to(torch::kFloat), s, q, s, torch::kFloat), c10::Error);
  EXPECT_THROW(fp8_quantize_act(torch::randn({2, 3, 4})), c10::Error);
}

TEST(Fp8Cuda, QuantizeMatchesE4m3Simulation) {
  GRPO_REQUIRE_CUDA();
  check_quantize(torch::kCUDA, torch::kFloat);
  check_quantize(torch::kCUDA, torch::kBFloat16);
}
TEST(Fp8Cuda, GemmMatchesFloat64AndBf16) {
  GRPO_REQUIRE_CUDA();
  check_gemm(torch::kCUDA);  // the tensor-core (wmma) kernel, the default
}
TEST(Fp8Cuda, SimtGemmMatchesFloat64AndBf16) {
  GRPO_REQUIRE_CUDA();
  setenv("GRPO_FP8_GEMM", "simt", 1);  // the CUDA-core kernel
  check_gemm(torch::kCUDA);
  check_linear(torch::kCUDA);
  unsetenv("GRPO_FP8_GEMM");
}
TEST(Fp8Cuda, LinearForwardAndGradientsWithinDeepGemmError) {
  GRPO_REQUIRE_CUDA();
  check_linear(torch::kCUDA);
}

}  // namespace
}  // namespace grpo::kernels::test
