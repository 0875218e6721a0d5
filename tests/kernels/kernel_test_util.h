#pragma once
// Helpers of the kernel tests: error metrics, NaN poisoning of the CUDA caching allocator,
// finite differences, and the skip for machines without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "grpo/kernels/ops.h"

namespace grpo::kernels::test {

inline bool cuda_ready() { return torch::cuda::is_available() && have_cuda_kernels(); }

/// Skips the current test on machines without a CUDA device (or builds without the kernels).
#define GRPO_REQUIRE_CUDA()                                                                  \
  do {                                                                                       \
    if (!::grpo::kernels::test::cuda_ready())                                                \
      GTEST_SKIP() << "no CUDA device" << (::grpo::kernels::have_cuda_kernels()              \
                                               ? ""                                          \
                                               : " (and this build has no CUDA kernels)");  \
  } while (0)

/// max |a - b| / max |b|, in float64: the relative error the tolerances below refer to.
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto ad = a.detach().to(torch::kCPU, torch::kDouble), bd = b.detach().to(torch::kCPU, torch::kDouble);
  EXPECT_EQ(ad.sizes(), bd.sizes());
  const double den = std::max(bd.abs().max().item<double>(), 1e-30);
  return (ad - bd).abs().max().item<double>() / den;  // NaN propagates: NaN > tol fails
}

/// DeepGEMM's calc_diff: 1 - 2 sum(x y) / sum(x^2 + y^2), a scale-free similarity (0 = equal).
inline double calc_diff(const torch::Tensor& x, const torch::Tensor& y) {
  auto xd = x.detach().to(torch::kCPU, torch::kDouble), yd = y.detach().to(torch::kCPU, torch::kDouble);
  const double denom = (xd * xd + yd * yd).sum().item<double>();
  return 1.0 - 2.0 * (xd * yd).sum().item<double>() / denom;
}

/// Fills a large freed block of the CUDA caching allocator with NaN, so that outputs the kernels
/// allocate next start as NaN and any element a kernel forgets to write shows up in the checks.
inline void poison_cuda() {
  if (!torch::cuda::is_available()) return;
  auto t = torch::empty({64 << 20}, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat));
  t.fill_(std::numeric_limits<float>::quiet_NaN());
  // released at scope exit; the allocator keeps the block and hands it out again
}

/// Central finite differences of the scalar f at x (float64), for tiny shapes.
inline torch::Tensor finite_diff(const std::function<double(const torch::Tensor&)>& f,
                                 const torch::Tensor& x, double h = 1e-6) {
  auto g = torch::zeros_like(x);
  auto xf = x.detach().clone().reshape({-1});
  auto gf = g.view({-1});
  for (int64_t i = 0; i < xf.numel(); ++i) {
    const double v = xf[i].item<double>();
    xf[i] = v + h;
    const double fp = f(xf.view(x.sizes()));
    xf[i] = v - h;
    const double fm = f(xf.view(x.sizes()));
    xf[i] = v;
    gf[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/// "[3, 37, 1000]": the shape each sweep names in its SCOPED_TRACE and assertion messages.
inline std::string shape_str(c10::IntArrayRef s) { return c10::str(s); }

inline torch::TensorOptions cuda_opts(torch::ScalarType dt) {
  return torch::TensorOptions().device(torch::kCUDA).dtype(dt);
}

}  // namespace grpo::kernels::test
