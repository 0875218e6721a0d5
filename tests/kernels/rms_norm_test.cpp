// RMSNorm (+ residual add) vs a float64 composition of the formula written in this test, on a sweep
// of shapes (odd, not multiples of the CUDA block; the shape is in every failure message);
// gradients vs float64 autograd of that composition and, on a tiny shape, finite differences.
#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

// The formula in float64, differentiable: h = x + residual, y = h / sqrt(mean(h^2) + eps) * w.
torch::Tensor ref_rms(const torch::Tensor& h, const torch::Tensor& w, double eps) {
  return h * torch::rsqrt(h.square().mean(-1, true) + eps) * w;
}

// Shapes [..., hidden]: the CUDA kernels run one 256-thread block per row, so hidden sizes below,
// at and above the block width, odd and not a multiple of 32, and rows not a multiple of anything.
// Not hidden = 1: there y = w x / sqrt(x^2 + eps) is flat, its input gradient is O(eps), all
// cancellation, and no float32 formula gets it to a relative 1e-5 (a conditioning limit, not a
// kernel error).
const std::vector<std::vector<int64_t>> kShapes = {{1, 3}, {129, 77}, {3, 37, 1000}, {7, 257},
                                                   {2, 4097}, {64, 32}, {5, 3, 2, 33}};

struct Case {
  torch::Tensor x, res, w, gy;
};
Case make_case(torch::ScalarType dt, torch::Device dev, const std::vector<int64_t>& shape) {
  torch::manual_seed(7);
  const int64_t cols = shape.back();
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  return {torch::randn(shape, torch::kDouble).to(o), torch::randn(shape, torch::kDouble).to(o),
          (1 + 0.1 * torch::randn({cols}, torch::kDouble)).to(o),
          torch::randn(shape, torch::kDouble).to(o)};
}

// Runs add_rms_norm on the case's device/dtype and compares y, h and all three gradients with
// the float64 reference computed from the same (rounded) inputs.
void check_add_rms_norm(torch::ScalarType dt, torch::Device dev, const std::vector<int64_t>& shape, double tol) {
  const double eps = 1e-6;
  const std::string sh = shape_str(shape);
  Case c = make_case(dt, dev, shape);
  if (dev.is_cuda()) poison_cuda();
  auto x = c.x.clone().requires_grad_(), r = c.res.clone().requires_grad_(),
       w = c.w.clone().requires_grad_();
  auto [y, h] = add_rms_norm(x, r, w, eps);
  ((y.to(torch::kDouble) * c.gy.to(torch::kDouble)).sum()).backward();

  auto xd = c.x.to(torch::kCPU, torch::kDouble).requires_grad_(),
       rd = c.res.to(torch::kCPU, torch::kDouble).requires_grad_(),
       wd = c.w.to(torch::kCPU, torch::kDouble).requires_grad_();
  // The op rounds h to the input dtype before normalising; so does the model it replaces.
  auto hd = xd + rd;
  auto hd_rounded = hd + (hd.to(dt).to(torch::kDouble) - hd).detach();
  auto yd = ref_rms(hd_rounded, wd, eps);
  (yd * c.gy.to(torch::kCPU, torch::kDouble)).sum().backward();

  EXPECT_LE(rel_err(y, yd), tol) << "y, shape " << sh;
  EXPECT_LE(rel_err(h, hd), tol) << "h, shape " << sh;
  EXPECT_LE(rel_err(x.grad(), xd.grad()), tol) << "grad x, shape " << sh;
  EXPECT_LE(rel_err(r.grad(), rd.grad()), tol) << "grad residual, shape " << sh;
  EXPECT_LE(rel_err(w.grad(), wd.grad()), tol) << "grad weight, shape " << sh;
}

void check_rms_norm(torch::ScalarType dt, torch::Device dev, const std::vector<int64_t>& shape, double tol) {
  const double eps = 1e-5;
  const std::string sh = shape_str(shape);
  Case c = make_case(dt, dev, shape);
  if (dev.is_cuda()) poison_cuda();
  auto x = c.x.clone().requires_grad_(), w = c.w.clone().requires_grad_();
  auto y = rms_norm(x, w, eps);
  (y.to(torch::kDouble) * c.gy.to(torch::kDouble)).sum().backward();
  auto xd = c.x.to(torch::kCPU, torch::kDouble).requires_grad_(),
       wd = c.w.to(torch::kCPU, torch::kDouble).requires_grad_();
  auto yd = ref_rms(xd, wd, eps);
  (yd * c.gy.to(torch::kCPU, torch::kDouble)).sum().backward();
  EXPECT_LE(rel_err(y, yd), tol) << "y, shape " << sh;
  EXPECT_LE(rel_err(x.grad(), xd.grad()), tol) << "grad x, shape " << sh;
  EXPECT_LE(rel_err(w.grad(), wd.grad()), tol) << "grad weight, shape " << sh;
}

void sweep(void (*check)(torch::ScalarType, torch::Device, const std::vector<int64_t>&, double),
           torch::ScalarType dt, torch::Device dev, double tol) {
  for (const auto& shape : kShapes) {
    SCOPED_TRACE("shape " + shape_str(shape));
    check(dt, dev, shape, tol);
  }
}

// Tolerances: float32 keeps 24 bits, and a row sum over 4097 terms in float32 loses at most a few
// ulps, far below 1e-5; the weight gradient sums over up to 129 rows. bfloat16 outputs are rounded
// to 8 bits (relative step 2^-8 = 3.9e-3), so 1e-2 allows the output rounding plus that of h.
TEST(RmsNormCpu, AddRmsNormFloat32MatchesFloat64) { sweep(check_add_rms_norm, torch::kFloat, torch::kCPU, 1e-5); }
TEST(RmsNormCpu, AddRmsNormBfloat16MatchesFloat64) { sweep(check_add_rms_norm, torch::kBFloat16, torch::kCPU, 1e-2); }
TEST(RmsNormCpu, RmsNormFloat32MatchesFloat64) { sweep(check_rms_norm, torch::kFloat, torch::kCPU, 1e-5); }
TEST(RmsNormCpu, RmsNormBfloat16MatchesFloat64) { sweep(check_rms_norm, torch::kBFloat16, torch::kCPU, 1e-2); }

TEST(RmsNormCpu, GradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  auto x = torch::randn({2, 5}, torch::kDouble), r = torch::randn({2, 5}, torch::kDouble),
       w = torch::randn({5}, torch::kDouble), gy = torch::randn({2, 5}, torch::kDouble),
       gh = torch::randn({2, 5}, torch::kDouble);
  auto loss = [&](const torch::Tensor& xx, const torch::Tensor& rr, const torch::Tensor& ww) {
    auto [y, h] = add_rms_norm(xx, rr, ww, 1e-6);
    return (y * gy).sum() + (h * gh).sum();  // both outputs feed the loss
  };
  auto xv = x.clone().requires_grad_(), rv = r.clone().requires_grad_(), wv = w.clone().requires_grad_();
  loss(xv, rv, wv).backward();
  auto fx = finite_diff([&](const torch::Tensor& t) { return loss(t, r, w).item<double>(); }, x);
  auto fr = finite_diff([&](const torch::Tensor& t) { return loss(x, t, w).item<double>(); }, r);
  auto fw = finite_diff([&](const torch::Tensor& t) { return loss(x, r, t).item<double>(); }, w);
  // Central differences with h = 1e-6 in float64: truncation ~h^2, cancellation ~1e-16/h = 1e-10.
  EXPECT_LE(rel_err(xv.grad(), fx), 1e-7);
  EXPECT_LE(rel_err(rv.grad(), fr), 1e-7);
  EXPECT_LE(rel_err(wv.grad(), fw), 1e-7);
}

TEST(RmsNormCpu, RejectsMismatchedWeight) {
  auto x = torch::randn({4, 8});
  EXPECT_THROW(rms_norm(x, torch::ones({7}), 1e-6), c10::Error);
  EXPECT_THROW(rms_norm(x, torch::ones({8}, torch::kBFloat16), 1e-6), c10::Error);
  EXPECT_THROW(rms_norm(x.to(torch::kInt), torch::ones({8}, torch::kInt), 1e-6), c10::Error);
}

TEST(RmsNormCuda, AddRmsNormFloat32MatchesFloat64) {
  GRPO_REQUIRE_CUDA();
  sweep(check_add_rms_norm, torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(RmsNormCuda, AddRmsNormBfloat16MatchesFloat64) {
  GRPO_REQUIRE_CUDA();
  sweep(check_add_rms_norm, torch::kBFloat16, torch::kCUDA, 1e-2);
}
TEST(RmsNormCuda, RmsNormFloat32MatchesFloat64) {
  GRPO_REQUIRE_CUDA();
  sweep(check_rms_norm, torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(RmsNormCuda, RmsNormBfloat16MatchesFloat64) {
  GRPO_REQUIRE_CUDA();
  sweep(check_rms_norm, torch::kBFloat16, torch::kCUDA, 1e-2);
}

}  // namespace
}  // namespace grpo::kernels::test

namespace grpo::kernels::test {
namespace {

// Rollouts run under torch::InferenceMode: every differentiable op must work there too and give
// the same values as with autograd on.
TEST(KernelOpsCpu, WorkUnderInferenceMode) {
  torch::manual_seed(53);
  auto x = torch::randn({5, 16}), r = torch::randn({5, 16}), w = torch::randn({16});
  auto gate = torch::randn({5, 16}), up = torch::randn({5, 16});
  auto q = torch::randn({5, 2, 16}), k = torch::randn({5, 1, 16});
  auto cs = torch::rand({5, 8}), sn = torch::rand({5, 8});
  auto tgt = torch::randint(0, 5, {5}, torch::kLong);
  auto y0 = add_rms_norm(x, r, w, 1e-6);
  auto s0 = swiglu(gate, up);
  auto q0 = rope(q, k, cs, sn);
  auto l0 = token_logprobs(x, r, tgt, 1.0, 2);  // r as a 5-token vocabulary
  auto n0 = rms_norm(x, w, 1e-6);
  c10::InferenceMode guard;
  auto y1 = add_rms_norm(x, r, w, 1e-6);
  EXPECT_TRUE(torch::equal(std::get<0>(y0), std::get<0>(y1)));
  EXPECT_TRUE(torch::equal(std::get<1>(y0), std::get<1>(y1)));
  EXPECT_TRUE(torch::equal(s0, swiglu(gate, up)));
  EXPECT_TRUE(torch::equal(std::get<0>(q0), std::get<0>(rope(q, k, cs, sn))));
  EXPECT_TRUE(torch::equal(std::get<0>(l0), std::get<0>(token_logprobs(x, r, tgt, 1.0, 2))));
  EXPECT_TRUE(torch::equal(n0, rms_norm(x, w, 1e-6)));  // with autograd on vs under InferenceMode
}

}  // namespace
}  // namespace grpo::kernels::test
