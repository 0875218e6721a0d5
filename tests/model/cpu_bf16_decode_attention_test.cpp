// CPU bf16 decode attention (model/cpu_bf16_decode_attention.h): against float64 softmax attention
// on the same bf16-valued inputs, against LibTorch's bf16 SDPA (the call it replaces), the AVX-512
// loop against the plain reference loop, over a sweep of shapes (printed); and the attention
// module takes it for CPU bf16 decode steps only (counted).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "grpo/model/attention.h"
#include "grpo/model/bf16_autocast.h"
#include "grpo/model/cpu_bf16_decode_attention.h"
#include "grpo/model/kv_cache.h"
#include "grpo/model/transformer.h"

namespace grpo::model {
namespace {

struct Case {
  int64_t B, H, Hkv, S, D;
  int mask;  // 0: none, 1: [B, 1, 1, S] per-row lengths (row 0 sees no key), 2: [1, 1, 1, S] shared
};

struct Inputs {
  torch::Tensor q, k, v, mask;
};

// q [B, H, 1, D] as the attention module makes it (a transposed view), k/v the filled prefix of a
// larger cache buffer (strided), bf16 values of unit scale.
Inputs make(const Case& c, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  Inputs in;
  in.q = torch::randn({c.B, 1, c.H, c.D}).mul_(2.0).to(torch::kBFloat16).transpose(1, 2);
  in.k = torch::randn({c.B, c.Hkv, c.S + 7, c.D}).to(torch::kBFloat16).narrow(2, 0, c.S);
  in.v = torch::randn({c.B, c.Hkv, c.S + 7, c.D}).to(torch::kBFloat16).narrow(2, 0, c.S);
  if (c.mask == 1) {
    auto len = torch::randint(1, c.S + 1, {c.B});
    len[0] = 0;  // a row that may attend to nothing: zeros
    in.mask = (torch::arange(c.S).view({1, c.S}) < len.view({c.B, 1})).view({c.B, 1, 1, c.S});
  } else if (c.mask == 2) {
    in.mask = (torch::rand({c.S}) < 0.7).logical_or(torch::arange(c.S) == 0).view({1, 1, 1, c.S});
  }
  return in;
}

// float64 softmax attention on the bf16-valued inputs, and sum_j p_j |v_j| (the scale of the
// error that rounding p_j to bf16 can make). Rows with no key allowed: 0.
std::pair<torch::Tensor, torch::Tensor> reference(const Inputs& in) {
  const int64_t H = in.q.size(1), Hkv = in.k.size(1), D = in.q.size(3);
  auto q = in.q.to(torch::kFloat64);
  auto k = in.k.to(torch::kFloat64).repeat_interleave(H / Hkv, 1);
  auto v = in.v.to(torch::kFloat64).repeat_interleave(H / Hkv, 1);
  auto s = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));  // [B, H, 1, S]
  if (in.mask.defined()) s = s.masked_fill(in.mask.logical_not(), -INFINITY);
  auto mx = std::get<0>(s.max(-1, true));
  mx = mx.masked_fill(mx.isinf(), 0.0);
  auto e = (s - mx).exp();
  auto p = e / e.sum(-1, true).clamp_min(1e-300);
  return {torch::matmul(p, v), torch::matmul(p, v.abs())};
}

// |got - ref| <= 2^-8 (sum_j p_j |v_j|) (p_j rounded to bf16) + 2^-8 |ref| (the output's bf16
// rounding) + 1e-5 (float32 sums of S terms, exp to ~1 ulp).
void expect_close(const torch::Tensor& got, const torch::Tensor& ref, const torch::Tensor& pv, const char* what) {
  auto g = got.to(torch::kFloat64);
  auto tol = pv * std::ldexp(1.0, -8) + ref.abs() * std::ldexp(1.0, -8) + 1e-5;
  auto err = (g - ref).abs();
  EXPECT_TRUE((err <= tol).all().item<bool>()) << what << ": max error " << err.max().item<double>()
                                                << ", worst error/tolerance " << (err / tol).max().item<double>();
}

TEST(CpuBf16DecodeAttention, MatchesFloat64AndBf16SdpaOverShapes) {
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 64, 0},   {2, 3, 3, 5, 64, 1},    {4, 9, 3, 96, 64, 1},  {3, 8, 2, 17, 128, 2},
      {2, 14, 2, 40, 64, 1}, {2, 4, 4, 600, 32, 1},  {2, 6, 2, 33, 48, 1},  {2, 2, 1, 9, 40, 1},  {1, 2, 1, 70, 256, 0},
  };
  const int64_t avx_before = cpu_bf16_decode_attention_avx512_calls();
  int64_t fast_cases = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::printf("B=%ld H=%ld Hkv=%ld S=%ld D=%ld mask=%d\n", c.B, c.H, c.Hkv, c.S, c.D, c.mask);
    auto in = make(c, 100 + i);
    // applies() wherever the AVX-512 loop runs (head_dim a multiple of 16, avx512f); D = 40 does not.
    const bool avx = __builtin_cpu_supports("avx512f") && c.D % 16 == 0;
    EXPECT_EQ(cpu_bf16_decode_attention_applies(in.q, in.k, in.v, in.mask), avx);
    const int64_t avx0 = cpu_bf16_decode_attention_avx512_calls();
    auto got = cpu_bf16_decode_attention(in.q, in.k, in.v, in.mask);
    fast_cases += cpu_bf16_decode_attention_avx512_calls() - avx0;
    auto plain = cpu_bf16_decode_attention_reference(in.q, in.k, in.v, in.mask);
    ASSERT_EQ(got.sizes(), in.q.sizes());
    ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
    auto [ref, pv] = reference(in);
    expect_close(got, ref, pv, "kernel vs float64");
    expect_close(plain, ref, pv, "reference loop vs float64");
    if (c.mask == 1) EXPECT_TRUE(torch::equal(got[0], torch::zeros_like(got[0])));  // row 0 sees no key
    // LibTorch's bf16 SDPA, the call this replaces (its row with no key is undefined: skipped).
    const std::optional<at::Tensor> m = in.mask.defined() ? std::optional<at::Tensor>(in.mask) : std::nullopt;
    auto sdpa = at::scaled_dot_product_attention(in.q, in.k, in.v, m, 0.0, false, std::nullopt, c.H != c.Hkv);
    const int64_t from = c.mask == 1 ? 1 : 0;
    auto s64 = sdpa.narrow(0, from, c.B - from).to(torch::kFloat64);
    auto g64 = got.narrow(0, from, c.B - from).to(torch::kFloat64);
    // Both within the bound of float64 above: at most twice it apart.
    auto tol = 2 * (pv.narrow(0, from, c.B - from) * std::ldexp(1.0, -8) +
                    ref.narrow(0, from, c.B - from).abs() * std::ldexp(1.0, -8) + 1e-5);
    EXPECT_TRUE(((g64 - s64).abs() <= tol).all().item<bool>()) << "vs bf16 SDPA: max diff " << (g64 - s64).abs().max().item<double>();
  }
  // Head dims that are multiples of 16 take the AVX-512 loop where the CPU has it; 40 the plain one.
  if (__builtin_cpu_supports("avx512f"))
    EXPECT_EQ(fast_cases, static_cast<int64_t>(cases.size()) - 1);
  else
    GTEST_LOG_(INFO) << "no avx512f on this CPU: only the reference loop ran";
  EXPECT_EQ(cpu_bf16_decode_attention_avx512_calls() - avx_before, fast_cases);
}

TEST(CpuBf16DecodeAttention, AppliesOnlyToOneBf16QueryTokenOnTheCpu) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no avx512f: applies() is false everywhere (LibTorch's SDPA runs)";
  auto in = make({2, 4, 2, 9, 64, 1}, 7);
  EXPECT_TRUE(cpu_bf16_decode_attention_applies(in.q, in.k, in.v, in.mask));
  EXPECT_TRUE(cpu_bf16_decode_attention_applies(in.q, in.k, in.v, torch::Tensor()));
  EXPECT_FALSE(cpu_bf16_decode_attention_applies(in.q.to(torch::kFloat32), in.k, in.v, in.mask));
  EXPECT_FALSE(cpu_bf16_decode_attention_applies(in.q.expand({2, 4, 3, 64}), in.k, in.v, in.mask));  // 3 query tokens
  EXPECT_FALSE(cpu_bf16_decode_attention_applies(in.q, in.k, in.v, in.mask.to(torch::kFloat32)));
  EXPECT_FALSE(cpu_bf16_decode_attention_applies(in.q, in.k.narrow(1, 0, 1).expand({2, 3, 9, 64}), in.v, in.mask));
  EXPECT_THROW(cpu_bf16_decode_attention(in.q.to(torch::kFloat32), in.k, in.v, in.mask), InternalError);
  auto odd = make({2, 4, 2, 9, 40, 1}, 8);  // no AVX-512 loop for head_dim 40
  EXPECT_FALSE(cpu_bf16_decode_attention_applies(odd.q, odd.k, odd.v, odd.mask));
}

ModelSpec tiny_spec() {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.3;
  return spec_from_config(c);
}

// The model: a CPU bf16 decode step (one token per row, KV cache, no gradients) takes the kernel
// once per layer and gives LibTorch's bf16 SDPA's output within bf16 rounding; the prefill, a
// float32 decode step and a forward with gradients do not take it.
TEST(CpuBf16DecodeAttention, ModelTakesItForBf16DecodeStepsOnly) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no avx512f: the model keeps LibTorch's SDPA";
  torch::manual_seed(3);
  const ModelSpec s = tiny_spec();
  Transformer model(s);
  const int64_t B = 3, P = 6;
  auto prompt = torch::randint(0, s.vocab_size, {B, P});
  auto next = torch::randint(0, s.vocab_size, {B, 1});
  auto calls = [] { return cpu_bf16_decode_attention_calls(); };
  auto decode = [&](bool bf16, int64_t* prefill_calls) {
    torch::NoGradGuard ng;
    Bf16Autocast ac(bf16, torch::kCPU);
    KVCache cache(s, B, P + 2, bf16 ? torch::kBFloat16 : torch::kFloat32);
    const int64_t c0 = calls();
    model->forward(prompt, torch::Tensor(), &cache);
    *prefill_calls = calls() - c0;
    return model->forward(next, torch::Tensor(), &cache).hidden;
  };
  int64_t prefill = -1;
  const int64_t c0 = calls();
  auto h = decode(true, &prefill);
  EXPECT_EQ(prefill, 0);
  EXPECT_EQ(calls() - c0, s.num_hidden_layers);
  const int64_t c1 = calls();
  decode(false, &prefill);
  EXPECT_EQ(calls() - c1, 0);
  {
    Bf16Autocast ac(true, torch::kCPU);
    const int64_t c2 = calls();
    model->forward(torch::cat({prompt, next}, 1), torch::Tensor(), nullptr).hidden.sum().backward();
    EXPECT_EQ(calls() - c2, 0);
  }
  // The same step as a full bf16 forward without a cache (LibTorch's SDPA): the last position's
  // hidden state agrees to bf16 rounding of a few layers.
  torch::Tensor full;
  {
    torch::NoGradGuard ng;
    Bf16Autocast ac(true, torch::kCPU);
    full = model->forward(torch::cat({prompt, next}, 1), torch::Tensor(), nullptr).hidden.narrow(1, P, 1);
  }
  auto diff = (h - full).abs().max().item<double>();
  EXPECT_LT(diff, 0.05 * full.abs().max().item<double>()) << "decode vs full bf16 forward";
}

}  // namespace
}  // namespace grpo::model
