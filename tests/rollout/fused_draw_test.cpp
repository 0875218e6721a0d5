// The engine's fast paths against independent float64 references: the fused CPU draw
// (draw_tokens_with_lse) against inverse-CDF sampling written here in float64, and the packed
// oneDNN head (DecodeHead) against the model's own logits computed in float64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <random>

#include "grpo/model/transformer.h"
#include "grpo/rollout/decode_head.h"
#include "grpo/rollout/sampling.h"

using namespace grpo;
using namespace grpo::rollout;

namespace {

struct Ref {
  int64_t token;
  double lse;
  double margin;  // distance of u * total from the nearest CDF step, relative to the total
};

// Inverse-CDF in float64: the first index whose cumulative mass exceeds u * total.
Ref reference_draw(const float* x, int64_t V, float u) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < V; ++i) m = std::max(m, static_cast<double>(x[i]));
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += std::exp(static_cast<double>(x[i]) - m);
  const double target = u * total;
  double acc = 0;
  Ref r{-1, m + std::log(total), std::numeric_limits<double>::infinity()};
  for (int64_t i = 0; i < V; ++i) {
    const double p = std::exp(static_cast<double>(x[i]) - m);
    if (p > 0) r.margin = std::min(r.margin, std::abs(acc + p - target) / total);
    acc += p;
    if (r.token < 0 && p > 0 && acc > target) r.token = i;
  }
  return r;
}

TEST(FusedDraw, MatchesFloat64InverseCdfOnOddShapes) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> unif(0.0f, 1.0f);
  torch::manual_seed(3);
  int checked = 0;
  for (auto [N, V] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {17, 511}, {33, 1537}, {64, 4099}, {5, 49152}}) {
    for (double scale : {0.5, 4.0}) {
      auto x = torch::randn({N, V}) * scale;
      // Filtered entries, as top-k / top-p leave them (never the whole row).
      if (V > 4) x.masked_fill_(torch::rand({N, V}) < 0.3, -std::numeric_limits<float>::infinity());
      x.select(1, V / 2).fill_(1.0f);
      auto u = torch::empty({N});
      for (int64_t n = 0; n < N; ++n) u[n] = unif(gen);
      auto [ids, lse] = draw_tokens_with_lse(x, u);
      ASSERT_EQ(ids.scalar_type(), torch::kInt64);
      ASSERT_EQ(lse.scalar_type(), torch::kFloat32);
      for (int64_t n = 0; n < N; ++n) {
        auto ref = reference_draw(x[n].contiguous().data_ptr<float>(), V, u[n].item<float>());
        // float32 sums carry ~1e-6 relative error: a uniform closer than that to a CDF step may go
        // either way (the contract in sampling.h), and is too rare to matter at these sizes.
        if (ref.margin > 1e-5) {
          EXPECT_EQ(ids[n].item<int64_t>(), ref.token) << "N=" << N << " V=" << V << " row " << n;
          ++checked;
        }
        EXPECT_NEAR(lse[n].item<float>(), ref.lse, 1e-5 * std::max(1.0, std::abs(ref.lse)));
      }
    }
  }
  EXPECT_GT(checked, 200);  // the margin rule skipped only a few rows
}

TEST(FusedDraw, UniformAtTheEndsStaysOnTokensWithMass) {
  auto x = torch::tensor({-std::numeric_limits<float>::infinity(), 0.0f, 2.0f, -std::numeric_limits<float>::infinity()})
               .view({1, 4});
  auto lo = draw_tokens_with_lse(x, torch::tensor({0.0f})).first.item<int64_t>();
  auto hi = draw_tokens_with_lse(x, torch::tensor({std::nextafter(1.0f, 0.0f)})).first.item<int64_t>();
  EXPECT_EQ(lo, 1);
  EXPECT_EQ(hi, 2);
  EXPECT_THROW(draw_tokens_with_lse(x, torch::tensor({0.5f, 0.5f})), InputError);
}

TEST(FusedDraw, AgreesWithTheComposedDrawOnManyRows) {
  // The same rule as draw_tokens (softmax, cumsum, searchsorted): on 2,000 random rows the two
  // disagree only where a uniform sits within float rounding of a CDF step, i.e. essentially never.
  torch::manual_seed(11);
  auto x = torch::randn({2000, 300}) * 3;
  auto u = torch::rand({2000});
  auto fused = draw_tokens_with_lse(x, u).first;
  auto composed = draw_tokens(x, 1.0, u);
  EXPECT_LE((fused != composed).sum().item<int64_t>(), 2);
}

model::Transformer head_model(bool tied, bool bias) {
  model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 1031;
  s.hidden_size = 48;
  s.intermediate_size = 64;
  s.num_hidden_layers = 1;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 12;
  s.max_position_embeddings = 32;
  s.tie_word_embeddings = tied;
  torch::manual_seed(5);
  model::Transformer m(s);
  if (bias) {
    // The head of an architecture with a biased lm_head: swap in a Linear with a bias.
    m->lm_head = m->replace_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(48, 1031).bias(true)));
    torch::NoGradGuard ng;
    m->lm_head->bias.normal_();
  }
  return m;
}

TEST(DecodeHead, PackedLogitsEqualFloat64Product) {
  if (!at::hasMKLDNN()) GTEST_SKIP() << "this LibTorch has no oneDNN: DecodeHead uses model->logits()";
  for (auto [tied, bias] : {std::pair{true, false}, {false, false}, {false, true}}) {
    auto m = head_model(tied, bias);
    DecodeHead head(m, 64);
    ASSERT_TRUE(head.packed()) << "float32 on the CPU with oneDNN must take the packed path";
    torch::InferenceMode im;
    const auto& w = tied ? m->embed_tokens->weight : m->lm_head->weight;
    for (int64_t rows : {1, 7, 33, 64, 65}) {
      auto h = torch::randn({rows, 48});
      auto got = head(h);
      auto ref = torch::matmul(h.to(torch::kFloat64), w.to(torch::kFloat64).t());
      if (bias) ref = ref + m->lm_head->bias.to(torch::kFloat64);
      ASSERT_EQ(got.sizes(), ref.sizes());
      // float32 dot products of length 48: |err| <= ~48 * eps * sum|h w| ~ 1e-5 at these magnitudes.
      EXPECT_LT((got.to(torch::kFloat64) - ref).abs().max().item<double>(), 2e-5) << rows << " rows";
    }
  }
}

TEST(DecodeHead, Bf16PackedAndPlainPathsRoundTheSameProduct) {
  // Under bf16 both paths compute bf16(bf16(h) . bf16(W)^T + bf16(b)), widened to float32.
  // Reference in float64 from the same bf16 roundings, rounded to bf16: a float32 sum can round to
  // the neighbouring bf16 value, one ulp = 2^-7 of the value at most.
  for (bool bias : {false, true}) {
    auto m = head_model(false, bias);
    DecodeHead plain(m, 16, /*allow_packing=*/false, /*bf16=*/true);
    DecodeHead packed(m, 16, /*allow_packing=*/true, /*bf16=*/true);
    EXPECT_FALSE(plain.packed());
    torch::InferenceMode im;
    auto h = torch::randn({5, 48});
    auto d = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat64); };
    auto ref = torch::matmul(d(h), d(m->lm_head->weight).t());
    if (bias) ref = ref + d(m->lm_head->bias);
    ref = d(ref);
    for (DecodeHead* head : {&plain, &packed}) {
      auto got = (*head)(h);
      ASSERT_EQ(got.scalar_type(), torch::kFloat32);
      auto err = (got.to(torch::kFloat64) - ref).abs() - ref.abs() * std::ldexp(1.0, -7);
      EXPECT_LE(err.max().item<double>(), 1e-6) << "bias " << bias << ", packed " << head->packed();
    }
  }
}

TEST(DecodeHead, DisabledByEnvironmentOrOtherDtypeFallsBack) {
  auto m = head_model(true, false);
  setenv("GRPO_PACKED_LM_HEAD", "0", 1);
  DecodeHead off(m, 8);
  unsetenv("GRPO_PACKED_LM_HEAD");
  EXPECT_FALSE(off.packed());
  torch::InferenceMode im;
  auto h = torch::randn({3, 48});
  EXPECT_TRUE(torch::equal(off(h), m->logits(h)));
  m->to(torch::kFloat64);
  DecodeHead f64(m, 8);
  EXPECT_FALSE(f64.packed());
}

}  // namespace

namespace {

TEST(DecodeHead, AnInPlaceWeightChangeMakesItStale) {
  if (!at::hasMKLDNN()) GTEST_SKIP() << "this LibTorch has no oneDNN: DecodeHead uses model->logits()";
  auto m = head_model(true, false);
  DecodeHead head(m, 8);
  EXPECT_TRUE(head.up_to_date());
  {
    torch::NoGradGuard ng;
    m->embed_tokens->weight.add_(0.5);  // as an optimizer step does
  }
  EXPECT_FALSE(head.up_to_date());
  // A fresh head sees the new weight.
  DecodeHead again(m, 8);
  torch::InferenceMode im;
  auto h = torch::randn({2, 48});
  auto ref = torch::matmul(h.to(torch::kFloat64), m->embed_tokens->weight.to(torch::kFloat64).t());
  EXPECT_LT((again(h).to(torch::kFloat64) - ref).abs().max().item<double>(), 2e-5);
}

// The unpacked bf16 head keeps a bf16 copy of the weight: an optimizer step must make it stale too
// (the plain float32 head reads the live weight and never is).
TEST(DecodeHead, Bf16PlainCopyGoesStaleOnAnInPlaceWeightChange) {
  auto m = head_model(true, false);
  DecodeHead plain(m, 8, /*allow_packing=*/false, /*bf16=*/false);
  DecodeHead bf16(m, 8, /*allow_packing=*/false, /*bf16=*/true);
  ASSERT_FALSE(bf16.packed());
  EXPECT_TRUE(bf16.up_to_date());
  {
    torch::NoGradGuard ng;
    m->embed_tokens->weight.add_(0.5);
  }
  EXPECT_FALSE(bf16.up_to_date());
  EXPECT_TRUE(plain.up_to_date());
}

}  // namespace
