// grpo::fp8_linear (the FP8 linear that kernels.fp8 puts in the decoder layers) against the float64
// product of its unquantised inputs, forward and both gradients, within a bound derived from the
// format rather than fitted to our output.
//
// The bound. A value v in a tile of scale s = max(amax, 1e-4) / 448 is stored as q = e4m3(v / s),
// round to nearest: e4m3 has 3 mantissa bits, so for normal |v / s| >= 2^-6 the rounding error is
// at most half a step, 2^-4 |v / s|; subnormals have a fixed step 2^-9, error <= 2^-10. Hence
// |v^ - v| <= 2^-4 |v| + 2^-10 s. For one product:
//   |a^ b^ - a b| <= (2 * 2^-4 + 2^-8) |a||b| + 2^-10 (1 + 2^-4) (s_a |b| + s_b |a|) + 2^-20 s_a s_b,
// summed over k (float32 accumulation adds ~K 2^-24 of sum |a||b|, far below 1e-5), then the
// output is rounded to the output dtype (u = 2^-8 for bf16, 2^-24 for float32): elementwise
//   |y^ - y| <= (1 + u) [0.12891 S + 1.07 2^-10 T + 1e-5 S] + u |y|,   S = |A| |B|^T,
// and T bounds the subnormal terms with each row's largest scale (amax of the row / 448).
// That bound is rigorous but loose (worst case over signs); the typical error is much smaller:
// rounding errors of relative standard deviation <= 2^-3 / (2 sqrt 3) = 0.036 per operand give
// about sqrt(2) * 0.036 = 0.051 relative L2 error of y for random data (less on average over the
// mantissa). We check ||y^ - y|| / ||y|| <= 2^-4 too, which a wrong scale or tile (O(1) errors)
// cannot pass (on results of >= 256 elements). Each case names its shape.
#include <cmath>
#include <sstream>

#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

struct LinShape {
  std::vector<int64_t> x;  // [..., K]
  int64_t n;               // output features
};
std::string name(const LinShape& s, torch::ScalarType dt) {
  std::ostringstream o;
  o << "x " << torch::IntArrayRef(s.x) << " w [" << s.n << ", " << s.x.back() << "] " << dt;
  return o.str();
}

// Elementwise bound of y^ = fp8(A) @ fp8(B)^T against y = A @ B^T (A: [M, K], B: [N, K], float64
// on CPU), and the relative L2 error. A's scales are per 1x128 tile; B's per tile or block: both are
// bounded by the row's (for B: the whole matrix's) amax / 448.
void expect_within_fp8_bound(const torch::Tensor& got, const torch::Tensor& a, const torch::Tensor& b, double u,
                             const std::string& what) {
  auto y = torch::matmul(a, b.t());
  auto aa = a.abs(), ab = b.abs();
  auto S = torch::matmul(aa, ab.t());
  auto sa = (std::get<0>(aa.max(1, true)).clamp_min(1e-4) / 448.0);  // [M, 1]
  auto sb = (ab.max().clamp_min(1e-4) / 448.0);                       // scalar
  auto T = sa * ab.sum(1).unsqueeze(0) + sb * aa.sum(1, true);        // [M, N]
  auto bound = (1 + u) * ((0.12890625 + 1e-5) * S + 1.07 * std::ldexp(1.0, -10) * T) + u * y.abs() + 1e-30;
  auto err = (got.to(torch::kCPU, torch::kDouble).reshape(y.sizes()) - y).abs();
  const double worst = (err / bound).max().item<double>();
  EXPECT_LE(worst, 1.0) << what << ": elementwise error over the e4m3 bound (max ratio " << worst << ")";
  if (y.numel() < 256) return;  // the L2 estimate needs many elements (a few can cancel to ~0)
  const double l2 = err.norm().item<double>() / std::max(y.norm().item<double>(), 1e-300);
  EXPECT_LE(l2, 0.0625) << what << ": relative L2 error";
  EXPECT_GT(l2, 1e-4) << what << ": (almost) no quantisation error: not an FP8 product";
}

void check_fp8_linear(torch::Device dev, torch::ScalarType dt) {
  const LinShape shapes[] = {{{1, 128}, 1},    {{43, 260}, 190}, {{7, 1000}, 33},  {{128, 128}, 128},
                             {{130, 257}, 129}, {{3, 5}, 2},      {{3, 43, 260}, 190}, {{64, 384}, 96}};
  const double u = dt == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -24);
  for (const auto& s : shapes) {
    const std::string what = name(s, dt);
    torch::manual_seed(17);
    // Inputs rounded to dt first: the float64 reference multiplies exactly what the op receives.
    auto x0 = torch::randn(s.x, torch::kDouble).to(dt).to(torch::kDouble);
    auto w0 = (0.05 * torch::randn({s.n, s.x.back()}, torch::kDouble)).to(dt).to(torch::kDouble);
    auto out_shape = s.x;
    out_shape.back() = s.n;
    auto gy0 = torch::randn(out_shape, torch::kDouble).to(dt).to(torch::kDouble);
    if (dev.is_cuda()) poison_cuda();
    auto x = x0.to(dev, dt).requires_grad_(), w = w0.to(dev, dt).requires_grad_();
    auto y = fp8_linear(x, w);
    ASSERT_EQ(y.sizes(), torch::IntArrayRef(out_shape)) << what;
    ASSERT_EQ(y.scalar_type(), dt) << what;
    y.backward(gy0.to(dev, dt));
    const int64_t K = s.x.back();
    auto x2 = x0.reshape({-1, K}), gy2 = gy0.reshape({-1, s.n});
    expect_within_fp8_bound(y, x2, w0, u, what + " forward y = x w^T");
    expect_within_fp8_bound(x.grad(), gy2, w0.t(), u, what + " dgrad dx = dy w");
    expect_within_fp8_bound(w.grad(), gy2.t(), x2.t(), u, what + " wgrad dw = dy^T x");
  }
}

TEST(Fp8LinearBound, CpuReferenceWithinE4m3Bound) {
  check_fp8_linear(torch::kCPU, torch::kBFloat16);
  check_fp8_linear(torch::kCPU, torch::kFloat);
}

TEST(Fp8LinearBound, CudaWithinE4m3Bound) {
  GRPO_REQUIRE_CUDA();
  check_fp8_linear(torch::kCUDA, torch::kBFloat16);
  check_fp8_linear(torch::kCUDA, torch::kFloat);
}

}  // namespace
}  // namespace grpo::kernels::test
