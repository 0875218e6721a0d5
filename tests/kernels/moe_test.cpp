// MoE dispatch: the permutation vs a plain std::stable_sort by expert, and the whole
// gather -> grouped GEMM -> unpermute pipeline vs a float64 loop over (token, choice) pairs,
// forward and gradients (x, expert weights, router weights); odd sizes and an empty expert.
#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

constexpr int64_t kTokens = 37, kTopk = 3, kExperts = 7, kIn = 45, kOut = 70;

torch::Tensor make_ids() {
  torch::manual_seed(29);
  auto ids = torch::randint(0, kExperts - 1, {kTokens, kTopk}, torch::kLong);
  return torch::where(ids >= 4, ids + 1, ids);  // expert 4 gets no token
}

void check_permute(torch::Device dev) {
  auto ids = make_ids();
  MoeRouting r = moe_permute(ids.to(dev), kExperts);
  auto flat = ids.reshape({-1});
  std::vector<int64_t> order(flat.numel());
  std::iota(order.begin(), order.end(), 0);
  auto acc = flat.accessor<int64_t, 1>();
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return acc[a] < acc[b]; });
  auto sorted = r.sorted_slots.cpu(), rows = r.slot_rows.cpu(), offs = r.offsets.cpu();
  for (size_t i = 0; i < order.size(); ++i) {
    ASSERT_EQ(sorted[i].item<int64_t>(), order[i]) << "row " << i;
    ASSERT_EQ(rows[order[i]].item<int64_t>(), static_cast<int64_t>(i));
  }
  int64_t run = 0;
  for (int64_t e = 0; e < kExperts; ++e) {
    EXPECT_EQ(offs[e].item<int64_t>(), run);
    run += (flat == e).sum().item<int64_t>();
  }
  EXPECT_EQ(offs[kExperts].item<int64_t>(), run);
  EXPECT_EQ(offs[5].item<int64_t>(), offs[4].item<int64_t>());  // the empty expert
}

void check_pipeline(torch::ScalarType dt, torch::Device dev, double tol) {
  auto ids = make_ids();
  torch::manual_seed(31);
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  auto x0 = torch::randn({kTokens, kIn}, torch::kDouble).to(o);
  auto w0 = (0.2 * torch::randn({kExperts, kOut, kIn}, torch::kDouble)).to(o);
  auto rw0 = torch::softmax(torch::randn({kTokens, kTopk}, torch::kDouble), -1).to(o);
  auto gout = torch::randn({kTokens, kOut}, torch::kDouble);

  // float64 reference: out[t] = sum_j rw[t, j] * x[t] @ W[ids[t, j]]^T
  auto xd = x0.to(torch::kCPU, torch::kDouble).requires_grad_(), wd = w0.to(torch::kCPU, torch::kDouble).requires_grad_(),
       rwd = rw0.to(torch::kCPU, torch::kDouble).requires_grad_();
  std::vector<torch::Tensor> rows;
  for (int64_t t = 0; t < kTokens; ++t) {
    auto acc = torch::zeros({kOut}, torch::kDouble);
    for (int64_t j = 0; j < kTopk; ++j)
      acc = acc + rwd[t][j] * torch::matmul(wd[ids[t][j].item<int64_t>()], xd[t]);
    rows.push_back(acc);
  }
  auto outd = torch::stack(rows);
  (outd * gout).sum().backward();

  if (dev.is_cuda()) poison_cuda();
  auto x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(), rw = rw0.clone().requires_grad_();
  MoeRouting r = moe_permute(ids.to(dev), kExperts);
  auto xs = moe_gather(x, r, kTopk);
  auto ys = moe_grouped_gemm(xs, w, r);
  auto out = moe_unpermute(ys, r, rw);
  (out.to(torch::kDouble).cpu() * gout).sum().backward();
  EXPECT_LE(rel_err(out, outd), tol);
  EXPECT_LE(rel_err(x.grad(), xd.grad()), tol);
  EXPECT_LE(rel_err(w.grad(), wd.grad()), tol);
  EXPECT_LE(rel_err(rw.grad(), rwd.grad()), tol);
  // The empty expert's weights get an exact zero gradient, not poison.
  EXPECT_EQ(w.grad()[4].abs().max().item<double>(), 0.0);
}

// float32: dot products of 45-70 terms plus a 3-term weighted sum, ~1e-6 at worst. bfloat16:
// three roundings to bfloat16 (gathered rows are exact; GEMM output, weighted sum) ~3 * 2^-9.
TEST(MoeCpu, PermuteIsStableSortByExpert) { check_permute(torch::kCPU); }
TEST(MoeCpu, PipelineFloat32MatchesFloat64Loop) { check_pipeline(torch::kFloat, torch::kCPU, 1e-5); }
TEST(MoeCpu, PipelineBfloat16MatchesFloat64Loop) { check_pipeline(torch::kBFloat16, torch::kCPU, 1e-2); }

TEST(MoeCpu, GradientsMatchFiniteDifferences) {
  torch::manual_seed(37);
  auto ids = torch::tensor({{0, 2}, {2, 1}, {0, 1}}, torch::kLong);
  auto x = torch::randn({3, 4}, torch::kDouble), w = torch::randn({3, 2, 4}, torch::kDouble),
       rw = torch::rand({3, 2}, torch::kDouble), g = torch::randn({3, 2}, torch::kDouble);
  MoeRouting r = moe_permute(ids, 3);
  auto loss = [&](const torch::Tensor& xx, const torch::Tensor& ww, const torch::Tensor& rr) {
    return (moe_unpermute(moe_grouped_gemm(moe_gather(xx, r, 2), ww, r), r, rr) * g).sum();
  };
  auto xv = x.clone().requires_grad_(), wv = w.clone().requires_grad_(), rv = rw.clone().requires_grad_();
  loss(xv, wv, rv).backward();
  auto fx = finite_diff([&](const torch::Tensor& t) { return loss(t, w, rw).item<double>(); }, x);
  auto fw = finite_diff([&](const torch::Tensor& t) { return loss(x, t, rw).item<double>(); }, w);
  auto fr = finite_diff([&](const torch::Tensor& t) { return loss(x, w, t).item<double>(); }, rw);
  // Central differences, h = 1e-6, all in float64 on CPU.
  EXPECT_LE(rel_err(xv.grad(), fx), 1e-7);
  EXPECT_LE(rel_err(wv.grad(), fw), 1e-7);
  EXPECT_LE(rel_err(rv.grad(), fr), 1e-7);
}

TEST(MoeCpu, RejectsOutOfRangeExpert) {
  EXPECT_THROW(moe_permute(torch::tensor({{0, 3}}, torch::kLong), 3), c10::Error);
  EXPECT_THROW(moe_permute(torch::tensor({{0, 1}}, torch::kFloat), 3), c10::Error);
}

TEST(MoeCuda, PermuteIsStableSortByExpert) {
  GRPO_REQUIRE_CUDA();
  check_permute(torch::kCUDA);
}
TEST(MoeCuda, PipelineFloat32MatchesFloat64Loop) {
  GRPO_REQUIRE_CUDA();
  check_pipeline(torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(MoeCuda, PipelineBfloat16MatchesFloat64Loop) {
  GRPO_REQUIRE_CUDA();
  check_pipeline(torch::kBFloat16, torch::kCUDA, 1e-2);  // tensor-core grouped GEMM
}
TEST(MoeCuda, PipelineBfloat16SimtMatchesFloat64Loop) {
  GRPO_REQUIRE_CUDA();
  setenv("GRPO_MOE_GEMM", "simt", 1);  // the CUDA-core grouped GEMM
  check_pipeline(torch::kBFloat16, torch::kCUDA, 1e-2);
  unsetenv("GRPO_MOE_GEMM");
}

}  // namespace
}  // namespace grpo::kernels::test
