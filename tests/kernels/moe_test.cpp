// MoE dispatch: the permutation vs a plain std::stable_sort by expert, and the whole
// gather -> grouped GEMM -> unpermute pipeline vs float64 per-(token, choice) products, forward and
// gradients (x, expert weights, router weights), on a sweep of shapes (named in every failure
// message): odd sizes, not multiples of the GEMM tiles, and an empty expert.
#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

struct MoeShape {
  int64_t tokens, topk, experts, in, out;
};
std::string shape_str(const MoeShape& s) {
  return c10::str("tokens ", s.tokens, " topk ", s.topk, " experts ", s.experts, " in ", s.in, " out ", s.out);
}
// The grouped GEMM tiles 64 rows x 64 columns over K steps of 16 (32 in the tensor-core one); the
// permutation counts in blocks of 1024 slots. Slot counts (tokens * topk) and widths below, across
// and not multiples of those, one expert, one token, more slots than one block (1300 * 2).
const std::vector<MoeShape> kShapes = {{37, 3, 7, 45, 70}, {1, 1, 1, 8, 8},    {64, 2, 8, 64, 128}, {13, 2, 5, 31, 17},
                                       {100, 1, 3, 96, 200}, {65, 4, 16, 33, 65}, {1300, 2, 6, 16, 24}};

// Expert ids [tokens, topk] with one expert (experts / 2, when there are at least 3) left empty.
torch::Tensor make_ids(const MoeShape& s) {
  torch::manual_seed(29);
  if (s.experts < 3) return torch::randint(0, s.experts, {s.tokens, s.topk}, torch::kLong);
  const int64_t empty = s.experts / 2;
  auto ids = torch::randint(0, s.experts - 1, {s.tokens, s.topk}, torch::kLong);
  return torch::where(ids >= empty, ids + 1, ids);
}

void check_permute(torch::Device dev, const MoeShape& s) {
  const std::string sh = shape_str(s);
  auto ids = make_ids(s);
  MoeRouting r = moe_permute(ids.to(dev), s.experts);
  auto flat = ids.reshape({-1});
  std::vector<int64_t> order(flat.numel());
  std::iota(order.begin(), order.end(), 0);
  auto acc = flat.accessor<int64_t, 1>();
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return acc[a] < acc[b]; });
  auto sorted = r.sorted_slots.cpu(), rows = r.slot_rows.cpu(), offs = r.offsets.cpu();
  auto sa = sorted.accessor<int64_t, 1>(), ra = rows.accessor<int64_t, 1>();
  for (size_t i = 0; i < order.size(); ++i) {
    ASSERT_EQ(sa[i], order[i]) << "row " << i << ", " << sh;
    ASSERT_EQ(ra[order[i]], static_cast<int64_t>(i)) << "slot " << order[i] << ", " << sh;
  }
  int64_t run = 0;
  for (int64_t e = 0; e < s.experts; ++e) {
    EXPECT_EQ(offs[e].item<int64_t>(), run) << "expert " << e << ", " << sh;
    run += (flat == e).sum().item<int64_t>();
  }
  EXPECT_EQ(offs[s.experts].item<int64_t>(), run) << sh;
}

void check_pipeline(torch::ScalarType dt, torch::Device dev, const MoeShape& s, double tol) {
  const std::string sh = shape_str(s);
  auto ids = make_ids(s);
  torch::manual_seed(31);
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  auto x0 = torch::randn({s.tokens, s.in}, torch::kDouble).to(o);
  auto w0 = (0.2 * torch::randn({s.experts, s.out, s.in}, torch::kDouble)).to(o);
  auto rw0 = torch::softmax(torch::randn({s.tokens, s.topk}, torch::kDouble), -1).to(o);
  auto gout = torch::randn({s.tokens, s.out}, torch::kDouble);

  // float64 reference: out[t] = sum_j rw[t, j] * x[t] @ W[ids[t, j]]^T, one (token, choice) pair
  // at a time, written with a per-pair weight lookup rather than any grouping.
  auto xd = x0.to(torch::kCPU, torch::kDouble).requires_grad_(), wd = w0.to(torch::kCPU, torch::kDouble).requires_grad_(),
       rwd = rw0.to(torch::kCPU, torch::kDouble).requires_grad_();
  auto wsel = wd.index_select(0, ids.reshape({-1})).view({s.tokens, s.topk, s.out, s.in});  // [T, k, out, in]
  auto per_pair = torch::matmul(wsel, xd.view({s.tokens, 1, s.in, 1})).squeeze(-1);      // [T, k, out]
  auto outd = (per_pair * rwd.unsqueeze(-1)).sum(1);                                       // [T, out]
  (outd * gout).sum().backward();

  if (dev.is_cuda()) poison_cuda();
  auto x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(), rw = rw0.clone().requires_grad_();
  MoeRouting r = moe_permute(ids.to(dev), s.experts);
  auto xs = moe_gather(x, r, s.topk);
  auto ys = moe_grouped_gemm(xs, w, r);
  auto out = moe_unpermute(ys, r, rw);
  (out.to(torch::kDouble).cpu() * gout).sum().backward();
  EXPECT_LE(rel_err(out, outd), tol) << "out, " << sh;
  EXPECT_LE(rel_err(x.grad(), xd.grad()), tol) << "grad x, " << sh;
  EXPECT_LE(rel_err(w.grad(), wd.grad()), tol) << "grad expert weights, " << sh;
  // The router gradient of (t, j) is one dot product, gout[t] . y[t, j], which can cancel to far
  // below its terms: its error is measured against the size of the terms, sum |gout[t]| |y[t, j]|.
  auto term_size = (gout.abs().unsqueeze(1) * per_pair.detach().abs()).sum(-1);  // [T, k]
  auto rw_err = ((rw.grad().to(torch::kCPU, torch::kDouble) - rwd.grad()).abs() / term_size).max().item<double>();
  EXPECT_LE(rw_err, tol) << "grad router weights, " << sh;
  // An expert with no tokens gets an exact zero gradient, not poison.
  if (s.experts >= 3) EXPECT_EQ(w.grad()[s.experts / 2].abs().max().item<double>(), 0.0) << sh;
}

void sweep_permute(torch::Device dev) {
  for (const auto& shape : kShapes) {
    SCOPED_TRACE(shape_str(shape));
    check_permute(dev, shape);
  }
}
void sweep_pipeline(torch::ScalarType dt, torch::Device dev, double tol) {
  for (const auto& shape : kShapes) {
    SCOPED_TRACE(shape_str(shape));
    check_pipeline(dt, dev, shape, tol);
  }
}

// float32: dot products of up to 96-200 terms plus a <= 4-term weighted sum, ~1e-6 at worst.
// bfloat16: three roundings to bfloat16 (gathered rows are exact; GEMM output, weighted sum) ~3 * 2^-9.
TEST(MoeCpu, PermuteIsStableSortByExpert) { sweep_permute(torch::kCPU); }
TEST(MoeCpu, PipelineFloat32MatchesFloat64Loop) { sweep_pipeline(torch::kFloat, torch::kCPU, 1e-5); }
TEST(MoeCpu, PipelineBfloat16MatchesFloat64Loop) { sweep_pipeline(torch::kBFloat16, torch::kCPU, 1e-2); }

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
  sweep_permute(torch::kCUDA);
}
TEST(MoeCuda, PipelineFloat32MatchesFloat64Loop) {
  GRPO_REQUIRE_CUDA();
  sweep_pipeline(torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(MoeCuda, PipelineBfloat16MatchesFloat64Loop) {
  GRPO_REQUIRE_CUDA();
  sweep_pipeline(torch::kBFloat16, torch::kCUDA, 1e-2);  // tensor-core grouped GEMM
}
TEST(MoeCuda, PipelineBfloat16SimtMatchesFloat64Loop) {
  GRPO_REQUIRE_CUDA();
  setenv("GRPO_MOE_GEMM", "simt", 1);  // the CUDA-core grouped GEMM
  sweep_pipeline(torch::kBFloat16, torch::kCUDA, 1e-2);
  unsetenv("GRPO_MOE_GEMM");
}

}  // namespace
}  // namespace grpo::kernels::test
