// Chunked token logprobs / entropy vs float64 log_softmax + gather on the full logits, for chunk
// sizes that do and do not divide the vocabulary, on a sweep of shapes (named in every failure
// message); gradients vs float64 autograd of that
// reference and finite differences on a tiny case.
#include "kernels/kernel_test_util.h"

namespace grpo::kernels::test {
namespace {

struct Ref {
  torch::Tensor logp, entropy, gh, gw;
};

// Full [tokens, vocab] float64 reference: what the chunked op must equal.
Ref reference(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& tgt, double temp,
              const torch::Tensor& gl, const torch::Tensor& ge) {
  auto hd = h.to(torch::kCPU, torch::kDouble).requires_grad_(), wd = w.to(torch::kCPU, torch::kDouble).requires_grad_();
  auto lsm = torch::log_softmax(torch::matmul(hd, wd.t()) / temp, -1);
  auto logp = lsm.gather(1, tgt.cpu().unsqueeze(1)).squeeze(1);
  auto ent = -(lsm.exp() * lsm).sum(-1);
  ((logp * gl).sum() + (ent * ge).sum()).backward();
  return {logp.detach(), ent.detach(), hd.grad(), wd.grad()};
}

struct LpShape {
  int64_t n, d, vocab, chunk;  // tokens, hidden, vocabulary, chunk_size
};
std::string shape_str(const LpShape& s) {
  return c10::str("tokens ", s.n, " hidden ", s.d, " vocab ", s.vocab, " chunk ", s.chunk);
}
// Chunks that divide the vocabulary, do not (last chunk short, 7 and 1000 vs 1001), exceed it
// (one chunk), and odd tokens / hidden sizes; vocabularies not a multiple of the kernels' tiles.
const std::vector<LpShape> kShapes = {{37, 48, 1000, 1000}, {37, 48, 1000, 128}, {37, 48, 1000, 7},
                                      {37, 48, 1000, 4096}, {1, 8, 5, 2},        {17, 33, 1001, 1000},
                                      {3, 7, 257, 64},      {64, 64, 2048, 512}, {29, 16, 300, 299}};

void check(torch::ScalarType dt, torch::Device dev, const LpShape& shp, double tol) {  // tol: float32
  torch::manual_seed(17);
  const int64_t n = shp.n, d = shp.d, vocab = shp.vocab, chunk = shp.chunk;
  const std::string sh = shape_str(shp);
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  // Weights scaled so that the logits have the same spread (std ~2 before the temperature) for every
  // hidden size: the bfloat16 bound below is relative to the logits' size.
  const double wscale = 0.3 * std::sqrt(48.0 / static_cast<double>(d));
  auto h0 = torch::randn({n, d}, torch::kDouble).to(o), w0 = (wscale * torch::randn({vocab, d}, torch::kDouble)).to(o);
  auto tgt = torch::randint(0, vocab, {n}, torch::kLong).to(dev);
  auto gl = torch::randn({n}, torch::kDouble), ge = torch::randn({n}, torch::kDouble);
  const double temp = 0.7;
  Ref r = reference(h0, w0, tgt, temp, gl, ge);
  if (dt == torch::kBFloat16) {
    // The logits z are rounded to bfloat16 (absolute error |z| 2^-9) before the softmax, and again
    // when the backward recomputes them: the probabilities' relative error reaches 2^-8 max |z|.
    const double zmax = (torch::matmul(h0.to(torch::kCPU, torch::kDouble), w0.to(torch::kCPU, torch::kDouble).t()) / temp)
                            .abs().max().item<double>();
    tol = std::max(tol, std::ldexp(1.0, -8) * zmax);
  }

  if (dev.is_cuda()) poison_cuda();
  auto h = h0.clone().requires_grad_(), w = w0.clone().requires_grad_();
  auto [logp, ent] = token_logprobs(h, w, tgt, temp, chunk);
  EXPECT_EQ(logp.scalar_type(), torch::kFloat) << sh;
  ((logp.to(torch::kDouble).cpu() * gl).sum() + (ent.to(torch::kDouble).cpu() * ge).sum()).backward();
  EXPECT_LE(rel_err(logp, r.logp), tol) << "logp, " << sh;
  EXPECT_LE(rel_err(ent, r.entropy), tol) << "entropy, " << sh;
  EXPECT_LE(rel_err(h.grad(), r.gh), tol) << "grad hidden, " << sh;
  EXPECT_LE(rel_err(w.grad(), r.gw), tol) << "grad weight, " << sh;
}

void sweep(torch::ScalarType dt, torch::Device dev, double tol) {
  for (const auto& shape : kShapes) {
    SCOPED_TRACE(shape_str(shape));
    check(dt, dev, shape, tol);
  }
}

// float32: logits from a float32 GEMM over d <= 64 (~1e-7 relative) and an online log-sum-exp in
// float32 over <= 2048 terms stay well under 1e-5. bfloat16: inputs are exact in both, but the
// logits are rounded to bfloat16 before the float32 reduction: 1e-2, or 2^-8 max |z| where the
// shape's largest logit makes that larger (see check()). The CPU backward's two products run in
// bfloat16 as CUDA's (the logits' gradient rounded to bf16, 2^-9 relative, sums rounded once more):
// a few 2^-9 normwise, inside the same tolerance.
TEST(TokenLogprobsCpu, Float32ChunkedMatchesFloat64LogSoftmax) { sweep(torch::kFloat, torch::kCPU, 1e-5); }
TEST(TokenLogprobsCpu, Bfloat16MatchesFloat64LogSoftmax) { sweep(torch::kBFloat16, torch::kCPU, 1e-2); }

TEST(TokenLogprobsCpu, GradientsMatchFiniteDifferences) {
  torch::manual_seed(23);
  auto h = torch::randn({2, 3}, torch::kDouble), w = torch::randn({5, 3}, torch::kDouble);
  auto tgt = torch::tensor({4, 1}, torch::kLong);
  auto gl = torch::randn({2}, torch::kDouble), ge = torch::randn({2}, torch::kDouble);
  auto loss = [&](const torch::Tensor& hh, const torch::Tensor& ww) {
    auto [lp, en] = token_logprobs(hh, ww, tgt, 1.3, 2);
    return (lp * gl).sum() + (en * ge).sum();
  };
  auto hv = h.clone().requires_grad_(), wv = w.clone().requires_grad_();
  loss(hv, wv).backward();
  // The forward returns float32 (logp, entropy are float32 by contract) so the differences see
  // float32 rounding (~1e-7 relative of values ~1) over h = 1e-3: error ~1e-4 of a gradient ~1.
  auto fh = finite_diff([&](const torch::Tensor& t) { return loss(t, w).item<double>(); }, h, 1e-3);
  auto fw = finite_diff([&](const torch::Tensor& t) { return loss(h, t).item<double>(); }, w, 1e-3);
  EXPECT_LE(rel_err(hv.grad(), fh), 1e-3);
  EXPECT_LE(rel_err(wv.grad(), fw), 1e-3);
}

TEST(TokenLogprobsCpu, RejectsBadInput) {
  auto h = torch::randn({3, 4}), w = torch::randn({10, 4});
  EXPECT_THROW(token_logprobs(h, w, torch::tensor({0, 10, 1}, torch::kLong)), c10::Error);
  EXPECT_THROW(token_logprobs(h, w, torch::tensor({0, 1, 1}, torch::kInt)), c10::Error);
  EXPECT_THROW(token_logprobs(h, torch::randn({10, 5}), torch::tensor({0, 1, 1}, torch::kLong)), c10::Error);
  EXPECT_THROW(token_logprobs(h, w, torch::tensor({0, 1, 1}, torch::kLong), 0.0), c10::Error);
}

TEST(TokenLogprobsCuda, Float32ChunkedMatchesFloat64LogSoftmax) {
  GRPO_REQUIRE_CUDA();
  sweep(torch::kFloat, torch::kCUDA, 1e-5);
}
TEST(TokenLogprobsCuda, Bfloat16MatchesFloat64LogSoftmax) {
  GRPO_REQUIRE_CUDA();
  sweep(torch::kBFloat16, torch::kCUDA, 1e-2);
}

}  // namespace
}  // namespace grpo::kernels::test
