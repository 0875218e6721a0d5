// trainer.bf16 on the CPU: the autocast scope really runs the products in bf16 (counted at the
// dispatcher, not read from a flag), and the bf16 forward/backward stays within what bf16
// rounding allows of the float32 model, dense and MoE.
//
// The bound. bf16 keeps 8 significand bits: unit roundoff u = 2^-8. Under autocast one linear
// y = x W^T rounds x and W to bf16 (relative error <= u each), multiplies exactly (8 x 8 bits fit
// float32's 24), accumulates the n products in float32 (relative error <= gamma_n = n 2^-24 of
// sum |x||w|) and rounds y to bf16 (u). Elementwise:
//   |y_bf16 - y| <= ((1+u)^3 (1+gamma_n) - 1) (|x| |W|^T)  ~ 3u (|x||W|^T)      (i)
// rigorous, checked as it stands on one linear below. The bound is relative to |x||W|^T, not to
// |y|: a reduction of length n with mixed signs has |x||W|^T ~ sqrt(n) |y| in the worst case. But
// the n rounding errors inside one output are independent with mean ~0, so they add like a random
// walk (sqrt(n) u |x_i w_i| ~ u |y|): normwise, one product's relative error is about 3u whatever
// n (Higham & Mary's probabilistic analysis). Through the model each bf16 product on the path adds
// such an error, and the float32 residual stream adds them (each block is a perturbation of the
// identity at these initialisations): linear in depth, S = 6 products per layer (qkv, scores,
// attention x V, o, gate/up, down), so the last hidden state h is within S 3u of float32 in the
// 2-norm: |dz_v| <= ||E_v|| ||dh|| (Cauchy-Schwarz). On the CPU the head is a bf16 product too
// (autocast's lm_head, as the bf16 rollout's): by (i) and Cauchy-Schwarz on |h||E_v|, one more
// |dz_v| <= 3u ||h|| ||E_v||, i.e. S + 1 products in all. Log-softmax is 2-Lipschitz in the max norm:
//   max |logp_bf16 - logp| <= 2 * (S + 1) * 3u * max_t ||h_t|| * max_v ||E_v||            (ii)
// The backward runs the same products transposed (another S + 1), so each gradient is within
// 2 (S + 1) 3u of float32, relative in the 2-norm.                                       (iii)
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "grpo/model/apply_kernels.h"
#include "grpo/model/transformer.h"
#include "grpo/train/autocast.h"
#include "grpo/train/token_batch.h"

namespace grpo::train {
namespace {

constexpr double kU = 1.0 / 256;  // bf16 unit roundoff, 2^-8
constexpr int kLayers = 2;

// Counts dispatcher calls of matrix products by operator name and the dtype of their first
// input, forward and backward (thread-local callbacks travel into the autograd engine's threads).
class MatmulCounter {
 public:
  MatmulCounter() {
    counts().clear();
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          const std::string name = fn.name();
          if (name != "aten::mm" && name != "aten::addmm" && name != "aten::bmm" && name != "aten::baddbmm") return nullptr;
          for (const auto& v : fn.inputs())
            if (v.isTensor()) {
              ++counts()[v.toTensor().scalar_type()];
              break;
            }
          return nullptr;
        })
            .needsInputs(true)
            .scopes({at::RecordScope::FUNCTION}));
  }
  ~MatmulCounter() { at::removeCallback(handle_); }
  static std::map<at::ScalarType, int>& counts() {
    thread_local std::map<at::ScalarType, int> c;
    return c;
  }
  int operator[](at::ScalarType t) const { return counts().count(t) ? counts().at(t) : 0; }

 private:
  at::CallbackHandle handle_;
};

model::ModelSpec spec(bool moe) {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = kLayers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.05;
  if (moe) {
    c.moe.num_experts = 4;
    c.moe.num_experts_per_tok = 2;
    c.moe.moe_intermediate_size = 32;
    c.moe.first_k_dense_replace = 1;
  }
  return model::spec_from_config(c);
}

TokenBatch batch(int64_t vocab) {
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 9, 2, 40, 41}, {3, 4}}, comps = {{7, 8, 9, 10, 11, 60, 61, 62}, {12, 13, 14}};
  for (auto* v : {&prompts, &comps})
    for (auto& r : *v)
      for (auto& t : r) t %= vocab;
  std::vector<const std::vector<int64_t>*> ps = {&prompts[0], &prompts[1]}, cs = {&comps[0], &comps[1]};
  return make_token_batch(ps, cs, 0, torch::kCPU);
}

struct FwdBwd {
  torch::Tensor logprobs;                      // [B, C] float32
  std::map<std::string, torch::Tensor> grads;  // float32, by parameter name
};

FwdBwd run(model::Transformer& m, const TokenBatch& tb, bool bf16) {
  m->zero_grad();
  auto lp = completion_logprobs(m, tb, 1.0, bf16);
  (-(lp.logprobs * tb.completion_mask).sum() + lp.aux_loss).backward();
  FwdBwd r{lp.logprobs.detach(), {}};
  for (const auto& p : m->named_parameters())
    if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
  return r;
}

TEST(Bf16Cpu, ScopeTurnsOnCpuAutocastAndRestoresIt) {
  ASSERT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  const auto before = at::autocast::get_autocast_dtype(at::kCPU);
  {
    Bf16Autocast outer(true, torch::Device(torch::kCPU));
    EXPECT_TRUE(outer.active());
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCPU), at::kBFloat16);
    { Bf16Autocast inner(true, torch::Device(torch::kCPU)); }
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU)) << "the inner scope ended the outer one";
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCPU), before);
  Bf16Autocast off(false, torch::Device(torch::kCPU));
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
}

// The rigorous elementwise bound (i) on one linear of SmolLM2's MLP shape, against float64.
TEST(Bf16Cpu, OneLinearWithinTheElementwiseRoundingBound) {
  torch::manual_seed(5);
  const int64_t n = 576;
  auto x = torch::randn({32, n});                   // [32, 576] float32
  auto w = torch::randn({1536, n}) * 0.05;          // [1536, 576] float32
  torch::Tensor y;
  {
    Bf16Autocast ac(true, torch::Device(torch::kCPU));
    y = torch::nn::functional::linear(x, w);
  }
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16) << "the linear did not run in bf16";
  auto x64 = x.to(torch::kFloat64), w64 = w.to(torch::kFloat64);
  auto exact = torch::matmul(x64, w64.t());
  auto scale = torch::matmul(x64.abs(), w64.abs().t());  // |x||W|^T
  const double gamma = n * std::ldexp(1.0, -24) / (1 - n * std::ldexp(1.0, -24));
  const double c = std::pow(1 + kU, 3) * (1 + gamma) - 1;
  auto err = (y.to(torch::kFloat64) - exact).abs();
  EXPECT_TRUE((err <= c * scale).all().item<bool>()) << "max err/scale " << (err / scale).max().item<double>() << " > " << c;
  // And it is bf16, not float32: float32's own error would be below gamma ~ 3.4e-5 of the scale.
  EXPECT_GT((err / scale).max().item<double>(), 4 * gamma);
}

class Bf16CpuModel : public ::testing::TestWithParam<bool> {};

TEST_P(Bf16CpuModel, ForwardAndBackwardWithinTheBf16BoundOfFloat32) {
  const bool moe = GetParam();
  torch::manual_seed(11);
  model::Transformer m(spec(moe));
  m->train();
  const auto tb = batch(m->spec().vocab_size);
  const FwdBwd ref = run(m, tb, false);
  FwdBwd got;
  {
    MatmulCounter count;
    got = run(m, tb, true);
    // Every linear of every layer (q, k, v, o and the MLP's or experts' products), forward and
    // backward, plus attention and the head's chunks: far more than 2 per layer in bf16.
    EXPECT_GT(count[at::kBFloat16], 7 * kLayers * 2) << "the products did not run in bf16";
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "autocast leaked out of completion_logprobs";
  EXPECT_EQ(got.logprobs.scalar_type(), torch::kFloat32);

  // (ii): S + 1 = kLayers * (4 + 2) + 1 (the head) bf16 stages; Lambda from the float32 model's last hidden state.
  auto mask = tb.completion_mask.to(torch::kBool);
  torch::Tensor lambda;
  {
    torch::NoGradGuard ng;
    auto h = m->forward(tb.input_ids, tb.attention_mask).hidden;  // [B, T, D] float32
    const auto& e = m->lm_head ? m->lm_head->weight : m->embed_tokens->weight;  // [V, D]
    lambda = h.norm(2, -1).max() * e.norm(2, -1).max();  // max_t ||h_t|| * max_v ||E_v||
  }
  const double S = kLayers * 6 + 1;
  const double bound = 2 * S * 3 * kU * lambda.item<double>();
  const double diff = (got.logprobs - ref.logprobs).masked_select(mask).abs().max().item<double>();
  EXPECT_LT(diff, bound) << "Lambda " << lambda.item<double>();
  std::printf("log-probs: max |bf16 - float32| %.3g, bound (ii) %.3g\n", diff, bound);
  EXPECT_GT(diff, 1e-6) << "(nearly) bit-identical to float32: bf16 did not run";

  // Gradients: float32 master weights and gradients, each within (iii).
  const double grad_bound = 2 * S * 3 * kU;
  int checked = 0;
  double worst = 0;
  for (const auto& p : m->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
    if (!ref.grads.count(p.key())) continue;
    ASSERT_TRUE(got.grads.count(p.key())) << p.key();
    const auto& g = got.grads.at(p.key());
    EXPECT_EQ(g.scalar_type(), torch::kFloat32) << p.key();
    auto a = g.to(torch::kFloat64), b = ref.grads.at(p.key()).to(torch::kFloat64);
    const double nb = b.norm().item<double>();
    if (nb < 1e-6) continue;  // a gradient that is (nearly) zero in float32 has no relative error
    const double rel = (a - b).norm().item<double>() / nb;
    EXPECT_LT(rel, grad_bound) << p.key();
    worst = std::max(worst, rel);
    ++checked;
  }
  std::printf("gradients: worst relative 2-norm error %.3g over %d parameters, bound %.3g\n", worst, checked, grad_bound);
  EXPECT_GT(checked, 10);
}

// RoPE's angles stay float32 under the bf16 scope (as HF's rotary embedding disables autocast):
// in bf16 the angle of position p is off by up to p 2^-9 rad, a whole turn's worth of error near
// p = 3000, which breaks bound (ii) at long positions; and kernels.fused_ops' grpo::rope takes float32
// tables only (it threw "cos and sin must be float32" before). Plain and fused, 700 tokens.
TEST(Bf16Cpu, RopeAnglesStayFloat32AtLongPositions) {
  for (const bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "fused_ops" : "plain");
    torch::manual_seed(5);
    model::Transformer m(spec(false));
    config::KernelsConfig k;
    k.fused_ops = fused;
    model::apply_kernels(*m, k);
    m->eval();
    std::vector<int64_t> prompt(690), comp = {7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int64_t>((i * 31 + 7) % m->spec().vocab_size);
    std::vector<const std::vector<int64_t>*> ps = {&prompt}, cs = {&comp};
    const auto tb = make_token_batch(ps, cs, 0, torch::kCPU);
    torch::NoGradGuard ng;
    const auto ref = completion_logprobs(m, tb, 1.0, false).logprobs;
    const auto got = completion_logprobs(m, tb, 1.0, true).logprobs;
    auto h = m->forward(tb.input_ids, tb.attention_mask).hidden;
    const auto& e = m->lm_head ? m->lm_head->weight : m->embed_tokens->weight;
    const double lambda = (h.norm(2, -1).max() * e.norm(2, -1).max()).item<double>();
    const double bound = 2 * (kLayers * 6 + 1) * 3 * kU * lambda;
    const double diff = (got - ref).masked_select(tb.completion_mask.to(torch::kBool)).abs().max().item<double>();
    EXPECT_LT(diff, bound);
    EXPECT_GT(diff, 1e-6) << "bf16 did not run";
  }
}

INSTANTIATE_TEST_SUITE_P(DenseAndMoe, Bf16CpuModel, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("Moe") : std::string("Dense"); });

// What the importance ratio sees at the first iteration: the old log-probs (no grad, before the
// update) and the policy's (with grad) come from the same bf16 forward, bit for bit, so the ratio
// is exactly 1 there whatever bf16 rounds (the rollout's own log-probs are not in the ratio).
TEST(Bf16Cpu, OldLogprobsWithoutGradEqualTheTrainingForwardBitForBit) {
  torch::manual_seed(11);
  model::Transformer m(spec(true));
  m->train();
  const auto tb = batch(m->spec().vocab_size);
  torch::Tensor old;
  {
    torch::NoGradGuard ng;
    old = completion_logprobs(m, tb, 1.0, true).logprobs;
  }
  auto lp = completion_logprobs(m, tb, 1.0, true).logprobs;
  EXPECT_TRUE(lp.requires_grad());
  EXPECT_TRUE(torch::equal(lp.detach(), old));
  EXPECT_TRUE(torch::equal(torch::exp(lp.detach() - old), torch::ones_like(old)));
}

// The CPU bf16 head is torch.autocast's: the training log-probs equal an independent reference that
// runs the forward AND the head (m->logits, an nn::Linear / F.linear) under LibTorch's own CPU
// autocast, widens the bf16 logits to float32 and takes log_softmax(z / T) in float32 (HF/TRL's
// recipe; the rollout's bf16 head computes the same, tests/rollout/bf16_rollout_test.cpp). The
// chunked product may sum in another order than the full one: where the two float32 sums straddle a
// bf16 rounding boundary a logit moves by one bf16 ulp, <= 2^-8 max|z|, and the log-prob by at most
// twice that over T (log-softmax is 2-Lipschitz in the max norm). A float32 head on the same hidden
// states is much further away in the mean (no logit rounded), so that half fails on a float32 head.
TEST(Bf16Cpu, HeadIsAutocastsBf16LinearWithFloat32LogSoftmax) {
  torch::manual_seed(11);
  model::Transformer m(spec(false));
  m->eval();
  const auto tb = batch(m->spec().vocab_size);
  const double T = 0.7;
  torch::NoGradGuard ng;
  const auto got = completion_logprobs(m, tb, T, true).logprobs;  // [B, C]
  torch::Tensor h, z;
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  h = m->forward(tb.input_ids, tb.attention_mask).hidden;  // [B, P + C, D]
  z = m->logits(h);                                         // [B, P + C, V]
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  ASSERT_EQ(z.scalar_type(), torch::kBFloat16) << "autocast's head is a bf16 linear";
  const int64_t P = tb.prompt_width, C = tb.completion_ids.size(1);
  auto pick = [&](const torch::Tensor& logits) {  // [B, P + C, V] float32 -> [B, C] log-probs
    auto lp = (logits.narrow(1, P - 1, C) / T).log_softmax(-1);
    return lp.gather(2, tb.completion_ids.unsqueeze(2)).squeeze(2);
  };
  const auto ref = pick(z.to(torch::kFloat32));
  const auto f32_head = pick(m->logits(h.to(torch::kFloat32)));
  const auto mask = tb.completion_mask.to(torch::kBool);
  const double bound = 2 * std::ldexp(z.to(torch::kFloat32).abs().max().item<double>(), -8) / T + 1e-5;
  const double diff = (got - ref).masked_select(mask).abs().max().item<double>();
  EXPECT_LE(diff, bound);
  const double mean_ref = (got - ref).masked_select(mask).abs().mean().item<double>();
  const double mean_f32 = (got - f32_head).masked_select(mask).abs().mean().item<double>();
  EXPECT_LT(mean_ref, 0.25 * mean_f32) << "vs autocast's head " << mean_ref << ", vs a float32 head " << mean_f32;
}

TEST(Bf16Cpu, OffRunsNoBf16Product) {
  torch::manual_seed(11);
  model::Transformer m(spec(true));
  const auto tb = batch(m->spec().vocab_size);
  MatmulCounter count;
  run(m, tb, false);
  EXPECT_EQ(count[at::kBFloat16], 0);
  EXPECT_GT(count[at::kFloat], 7 * kLayers) << "the counter itself must see the float32 products";
}

TEST(Bf16Cpu, LogprobMismatchIsMeanAbsAndK3) {
  // r = train - rollout = {0.1, -0.2, <masked 5.0>}: |r| sum 0.3; k3 = e^r - r - 1 summed.
  auto train = torch::tensor({{-1.0f, -2.0f, 0.0f}});
  auto rollout = torch::tensor({{-1.1f, -1.8f, -5.0f}});
  auto mask = torch::tensor({{1.0f, 1.0f, 0.0f}});
  auto mm = logprob_mismatch(train, rollout, mask);
  const double r0 = double(-1.0f) - double(-1.1f), r1 = double(-2.0f) - double(-1.8f);
  EXPECT_NEAR(mm.abs_sum.item<double>(), std::abs(r0) + std::abs(r1), 1e-12);
  EXPECT_NEAR(mm.k3_sum.item<double>(), std::exp(r0) - r0 - 1 + std::exp(r1) - r1 - 1, 1e-12);
  EXPECT_EQ(mm.count.item<double>(), 2.0);
  // Rows of the rollout's log-probs, zero past each completion's end.
  std::vector<float> a = {-0.5f, -0.25f}, b = {-1.0f};
  auto mat = rollout_logprob_matrix({&a, &b}, 3);
  EXPECT_TRUE(torch::equal(mat, torch::tensor({{-0.5f, -0.25f, 0.0f}, {-1.0f, 0.0f, 0.0f}})));
  EXPECT_THROW(rollout_logprob_matrix({&a}, 1), InputError);
}

}  // namespace
}  // namespace grpo::train
