// SwiGLU vs silu(gate) * up in float64, forward and both gradients, on a sweep of shapes (the shape
// in every failure message); finite differences on a tiny shape; CUDA versions skip without a GPU.
#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

// Element counts around the CUDA kernel's 256-thread block and its grid-stride loop: 1, odd,
// one past a block, a multiple of the block, and large odd; any leading shape.
const std::vector<std::vector<int64_t>> kShapes = {{1}, {7}, {3, 1001}, {256}, {2, 4097}, {5, 3, 129}, {65537}};

void check_swiglu(torch::ScalarType dt, torch::Device dev, const std::vector<int64_t>& shape, double tol) {
  torch::manual_seed(11);
  const std::string sh = shape_str(shape);
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  auto g0 = (3 * torch::randn(shape, torch::kDouble)).to(o), u0 = torch::randn(shape, torch::kDouble).to(o),
       gy = torch::randn(shape, torch::kDouble).to(o);
  if (dev.is_cuda()) poison_cuda();
  auto g = g0.clone().requires_grad_(), u = u0.clone().requires_grad_();
  auto y = swiglu(g, u);
  (y.to(torch::kDouble) * gy.to(torch::kDouble)).sum().backward();
  auto gd = g0.to(torch::kCPU, torch::kDouble).requires_grad_(), ud = u0.to(torch::kCPU, torch::kDouble).requires_grad_();
  auto yd = gd * torch::sigmoid(gd) * ud;  // silu written out, independent of torch::silu
  (yd * gy.to(torch::kCPU, torch::kDouble)).sum().backward();
  EXPECT_LE(rel_err(y, yd), tol) << "y, shape " << sh;
  EXPECT_LE(rel_err(g.grad(), gd.grad()), tol) << "grad gate, shape " << sh;
  EXPECT_LE(rel_err(u.grad(), ud.grad()), tol) << "grad up, shape " << sh;
}

void sweep(torch::ScalarType dt, torch::Device dev, double tol) {
  for (const auto& shape : kShapes) {
    SCOPED_TRACE("shape " + shape_str(shape));
    check_swiglu(dt, dev, shape, tol);
  }
}

// float32: a handful of float32 operations per element (~1e-7 each); bfloat16: output rounding
// 2^-8 relative dominates.
TEST(SwigluCpu, Float32MatchesFloat64) { sweep(torch::kFloat, torch::kCPU, 1e-5); }
TEST(SwigluCpu, Bfloat16MatchesFloat64) { sweep(torch::kBFloat16, torch::kCPU, 1e-2); }

TEST(SwigluCpu, GradientsMatchFiniteDifferences) {
  torch::manual_seed(5);
  auto g = torch::randn({7}, torch::kDouble), u = torch::randn({7}, torch::kDouble),
       w = torch::randn({7}, torch::kDouble);
  auto gv = g.clone().requires_grad_(), uv = u.clone().requires_grad_();
  (swiglu(gv, uv) * w).sum().backward();
  auto fg = finite_diff([&](const torch::Tensor& t) { return (swiglu(t, u) * w).sum().item<double>(); }, g);
  auto fu = finite_diff([&](const torch::Tensor& t) { return (swiglu(g, t) * w).sum().item<double>(); }, u);
  EXPECT_LE(rel_err(gv.grad(), fg), 1e-7);  // central differences, h = 1e-6, float64
  EXPECT_LE(rel_err(uv.grad(), fu), 1e-7);
}

TEST(SwigluCpu, RejectsShapeMismatch) {
  EXPECT_THROW(swiglu(torch::randn({2, 3}), torch::randn({3, 2})), c10::Error);
}

TEST(SwigluCuda, Float32MatchesFloat64) {
  GRPO_REQUIRE_CUDA();
  sweep(torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(SwigluCuda, Bfloat16MatchesFloat64) {
  GRPO_REQUIRE_CUDA();
  sweep(torch::kBFloat16, torch::kCUDA, 1e-2);
}

}  // namespace
}  // namespace grpo::kernels::test
