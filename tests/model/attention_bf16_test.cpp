// CPU bf16 attention with gradients (model/cpu_bf16_attention.h): the forward is LibTorch's bf16
// SDPA to the bit (the forward without gradients, which old/reference log-probs and the rollout
// run); the backward is float32 softmax-attention calculus, checked against LibTorch's float32 SDPA
// autograd on the same (bf16-valued) inputs; the module takes it for training forwards of short
// sequences only.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/model/attention.h"
#include "grpo/model/bf16_autocast.h"
#include "grpo/model/cpu_bf16_attention.h"
#include "grpo/model/transformer.h"

namespace grpo::model {
namespace {

// Causal mask over T tokens whose first `pad` keys are padding: queries < pad attend to nothing.
torch::Tensor padded_causal(int64_t B, int64_t T, int64_t pad) {
  auto idx = torch::arange(T);
  auto m = (idx.view({T, 1}) >= idx.view({1, T})).logical_and(idx.view({1, T}) >= pad);
  return m.view({1, 1, T, T}).expand({B, 1, T, T});
}

TEST(CpuBf16Sdpa, ForwardIsBf16SdpaAndBackwardFloat32Calculus) {
  torch::manual_seed(4);
  const int64_t B = 3, H = 6, Hkv = 2, T = 20, D = 16, pad = 2;
  auto bf = [](torch::IntArrayRef s) { return torch::randn(s).to(torch::kBFloat16).requires_grad_(true); };
  auto q = bf({B, H, T, D}), k = bf({B, Hkv, T, D}), v = bf({B, Hkv, T, D});
  auto mask = padded_causal(B, T, pad);
  // dO: bf16-representable, zero on the rows with no key (as in the model: nothing reads them).
  auto w = torch::randn({B, H, T, D}).to(torch::kBFloat16).to(torch::kFloat32);
  w.narrow(2, 0, pad).zero_();

  const int64_t before = cpu_bf16_sdpa_backwards();
  auto out = cpu_bf16_sdpa(q, k, v, mask);
  {
    torch::NoGradGuard ng;
    auto ref = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, std::nullopt, true);
    EXPECT_TRUE(torch::equal(out, ref));
  }
  (out.to(torch::kFloat32) * w).sum().backward();
  EXPECT_EQ(cpu_bf16_sdpa_backwards() - before, 1);

  // Reference: float32 SDPA's autograd on the queries that have keys (the others give NaN there).
  auto q32 = q.detach().to(torch::kFloat32).narrow(2, pad, T - pad).requires_grad_(true);
  auto k32 = k.detach().to(torch::kFloat32).requires_grad_(true);
  auto v32 = v.detach().to(torch::kFloat32).requires_grad_(true);
  auto o32 = at::scaled_dot_product_attention(q32, k32, v32, mask.narrow(2, pad, T - pad), 0.0, false, std::nullopt, true);
  (o32 * w.narrow(2, pad, T - pad)).sum().backward();
  auto close = [](const torch::Tensor& got, const torch::Tensor& ref, const char* what) {
    ASSERT_TRUE(torch::isfinite(got).all().item<bool>()) << what;
    // float32 sums in another order, then one bf16 rounding (2^-8 relative) of the gradient
    auto tol = ref.abs() * std::ldexp(1.0, -8) + 1e-4 * ref.abs().max();
    EXPECT_TRUE(((got.to(torch::kFloat32) - ref).abs() <= tol).all().item<bool>())
        << what << ": max diff " << (got.to(torch::kFloat32) - ref).abs().max().item<double>();
  };
  ASSERT_EQ(q.grad().scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(q.grad().narrow(2, 0, pad), torch::zeros({B, H, pad, D}, torch::kBFloat16)));
  close(q.grad().narrow(2, pad, T - pad), q32.grad(), "dq");
  close(k.grad(), k32.grad(), "dk");
  close(v.grad(), v32.grad(), "dv");
}

ModelSpec tiny_spec() {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 96;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.3;
  return spec_from_config(c);
}

// The module: a bf16 forward with gradients of up to kCpuBf16MathBackwardMaxLen tokens takes
// cpu_bf16_sdpa (its backward runs) and gives the same output as without gradients; a longer one,
// one without gradients and a float32 one do not.
TEST(CpuBf16Sdpa, AttentionTakesItForShortTrainingForwardsOnly) {
  torch::manual_seed(9);
  const ModelSpec s = tiny_spec();
  Attention attn(s, 0);
  auto run = [&](int64_t T, bool bf16, bool grad) {
    const int64_t B = 2, hd = s.head_dim;
    auto x = torch::randn({B, T, s.hidden_size});
    torch::AutoGradMode gm(grad);
    torch::Tensor y;
    {
      Bf16Autocast ac(bf16, torch::kCPU);
      y = attn->forward(x, torch::ones({B, T, hd}), torch::zeros({B, T, hd}), padded_causal(B, T, 0), nullptr);
    }
    const int64_t before = cpu_bf16_sdpa_backwards();
    if (grad) y.to(torch::kFloat32).sum().backward();
    return std::make_pair(y.detach(), cpu_bf16_sdpa_backwards() - before);
  };
  EXPECT_EQ(run(12, true, true).second, 1);
  EXPECT_EQ(run(kCpuBf16MathBackwardMaxLen + 4, true, true).second, 0);
  EXPECT_EQ(run(12, false, true).second, 0);
  torch::manual_seed(1);
  auto with = run(12, true, true).first;
  torch::manual_seed(1);
  auto without = run(12, true, false).first;
  EXPECT_TRUE(torch::equal(with, without));
}

}  // namespace
}  // namespace grpo::model
