// RoPE vs transformers' apply_rotary_pos_emb written out in float64 (q * cos + rotate_half(q) *
// sin with the angle tables duplicated to head_dim), in place and out of place, on a sweep of
// shapes (named in every failure message); gradients vs
// float64 autograd and finite differences; the inverse rotation undoes the rotation.
#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

// cos/sin [T, d/2] from positions and theta = 10000 (Llama), in float64.
std::pair<torch::Tensor, torch::Tensor> angles(int64_t t, int64_t d) {
  auto inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, d, 2, torch::kDouble) / d);
  auto pos = torch::arange(t, torch::kDouble) * 3 + 5;  // not 0..T-1: positions are arbitrary
  auto f = torch::outer(pos, inv_freq);
  return {f.cos(), f.sin()};
}

torch::Tensor hf_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  // x: [T, H, d]; cos/sin: [T, d/2] -> [T, 1, d] as transformers builds them (cat(freqs, freqs)).
  auto c = torch::cat({cos, cos}, -1).unsqueeze(1), s = torch::cat({sin, sin}, -1).unsqueeze(1);
  return x * c + rotate_half(x) * s;
}

struct RopeShape {
  int64_t t, hq, hk, d;  // tokens, query heads, key heads, head_dim
};
std::string shape_str(const RopeShape& s) {
  return c10::str("t ", s.t, " hq ", s.hq, " hk ", s.hk, " head_dim ", s.d);
}
// The CUDA kernel runs one thread per rotated pair: head_dim / 2 odd (33, 65, 1, 3), one token or
// head, GQA and MHA, and a [T, H, d] count not a multiple of the block.
const std::vector<RopeShape> kShapes = {{37, 5, 3, 66}, {1, 1, 1, 2}, {16, 8, 8, 64}, {3, 2, 1, 128},
                                        {9, 7, 1, 130}, {5, 4, 2, 6}, {33, 3, 3, 80}};

void check_rope(torch::ScalarType dt, torch::Device dev, const RopeShape& shp, double tol) {
  torch::manual_seed(13);
  const int64_t t = shp.t, hq = shp.hq, hk = shp.hk, d = shp.d;
  const std::string sh = shape_str(shp);
  auto [cosd, sind] = angles(t, d);
  auto cos = cosd.to(dev, torch::kFloat), sin = sind.to(dev, torch::kFloat);
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  auto q0 = torch::randn({t, hq, d}, torch::kDouble).to(o), k0 = torch::randn({t, hk, d}, torch::kDouble).to(o);
  auto gq = torch::randn({t, hq, d}, torch::kDouble), gk = torch::randn({t, hk, d}, torch::kDouble);

  // Reference from the float32 angle tables the op receives, in float64.
  auto cr = cos.to(torch::kCPU, torch::kDouble), sr = sin.to(torch::kCPU, torch::kDouble);
  auto qd = q0.to(torch::kCPU, torch::kDouble).requires_grad_(), kd = k0.to(torch::kCPU, torch::kDouble).requires_grad_();
  auto qrd = hf_rope(qd, cr, sr), krd = hf_rope(kd, cr, sr);
  ((qrd * gq).sum() + (krd * gk).sum()).backward();

  // out of place, with autograd
  if (dev.is_cuda()) poison_cuda();
  auto q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_();
  auto [qr, kr] = rope(q, k, cos, sin);
  ((qr.to(torch::kDouble).cpu() * gq).sum() + (kr.to(torch::kDouble).cpu() * gk).sum()).backward();
  EXPECT_LE(rel_err(qr, qrd), tol) << "q, " << sh;
  EXPECT_LE(rel_err(kr, krd), tol) << "k, " << sh;
  EXPECT_LE(rel_err(q.grad(), qd.grad()), tol) << "grad q, " << sh;
  EXPECT_LE(rel_err(k.grad(), kd.grad()), tol) << "grad k, " << sh;

  // in place, then back
  auto qi = q0.clone(), ki = k0.clone();
  rope_(qi, ki, cos, sin);
  EXPECT_LE(rel_err(qi, qrd), tol) << "q in place, " << sh;
  EXPECT_LE(rel_err(ki, krd), tol) << "k in place, " << sh;
  rope_(qi, ki, cos, sin, /*inverse=*/true);
  EXPECT_LE(rel_err(qi, q0), 2 * tol) << "q rotated back, " << sh;  // two roundings to dt
  EXPECT_LE(rel_err(ki, k0), 2 * tol) << "k rotated back, " << sh;
}

void sweep(torch::ScalarType dt, torch::Device dev, double tol) {
  for (const auto& shape : kShapes) {
    SCOPED_TRACE(shape_str(shape));
    check_rope(dt, dev, shape, tol);
  }
}

// float32: |cos|,|sin| <= 1 and two products per element, ~1e-7; bfloat16: output rounding.
TEST(RopeCpu, Float32MatchesTransformersFormula) { sweep(torch::kFloat, torch::kCPU, 1e-5); }
TEST(RopeCpu, Bfloat16MatchesTransformersFormula) { sweep(torch::kBFloat16, torch::kCPU, 1e-2); }

TEST(RopeCpu, GradientsMatchFiniteDifferences) {
  torch::manual_seed(2);
  auto [c, s] = angles(3, 4);
  auto cf = c.to(torch::kFloat), sf = s.to(torch::kFloat);
  auto q = torch::randn({3, 2, 4}, torch::kDouble), k = torch::randn({3, 1, 4}, torch::kDouble);
  auto wq = torch::randn({3, 2, 4}, torch::kDouble), wk = torch::randn({3, 1, 4}, torch::kDouble);
  auto loss = [&](const torch::Tensor& qq, const torch::Tensor& kk) {
    auto [a, b] = rope(qq, kk, cf, sf);
    return (a * wq).sum() + (b * wk).sum();
  };
  auto qv = q.clone().requires_grad_(), kv = k.clone().requires_grad_();
  loss(qv, kv).backward();
  auto fq = finite_diff([&](const torch::Tensor& t) { return loss(t, k).item<double>(); }, q);
  auto fk = finite_diff([&](const torch::Tensor& t) { return loss(q, t).item<double>(); }, k);
  EXPECT_LE(rel_err(qv.grad(), fq), 1e-7);
  EXPECT_LE(rel_err(kv.grad(), fk), 1e-7);
}

TEST(RopeCpu, RejectsBadTables) {
  auto q = torch::randn({4, 2, 8}), k = torch::randn({4, 1, 8});
  auto c = torch::randn({4, 3}), s = torch::randn({4, 3});  // head_dim/2 is 4
  EXPECT_THROW(rope_(q, k, c, s), c10::Error);
  auto odd = torch::randn({4, 2, 7});
  EXPECT_THROW(rope_(odd, k, torch::randn({4, 4}), torch::randn({4, 4})), c10::Error);
}

TEST(RopeCuda, Float32MatchesTransformersFormula) {
  GRPO_REQUIRE_CUDA();
  sweep(torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(RopeCuda, Bfloat16MatchesTransformersFormula) {
  GRPO_REQUIRE_CUDA();
  sweep(torch::kBFloat16, torch::kCUDA, 1e-2);
}

}  // namespace
}  // namespace grpo::kernels::test
