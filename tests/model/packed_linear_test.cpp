// oneDNN-packed linears (model::PackedWeights) against float64 products, and the scope that routes
// a model's linears through them: same logits as the plain forward, weights repacked after an
// in-place change, nothing packed with grad mode on.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "grpo/model/packed_linear.h"
#include "grpo/model/transformer.h"

using namespace grpo::model;

namespace {

#define REQUIRE_PACKING()                                                                          \
  do {                                                                                             \
    if (!PackedWeights::available()) GTEST_SKIP() << "this LibTorch has no oneDNN linear ops";     \
  } while (0)

TEST(PackedWeights, LinearEqualsFloat64OnOddShapes) {
  REQUIRE_PACKING();
  torch::manual_seed(21);
  PackedWeights pw;
  for (auto [rows, in, out] : {std::tuple<int64_t, int64_t, int64_t>{1, 7, 5}, {3, 64, 33}, {17, 129, 250}, {65, 576, 192}}) {
    auto w = torch::randn({out, in});
    auto b = torch::randn({out});
    auto x = torch::randn({rows, 1, in});  // a decode step's [B, 1, D]
    auto y = pw.linear(x, w, b);
    auto ref = torch::matmul(x.to(torch::kFloat64), w.to(torch::kFloat64).t()) + b.to(torch::kFloat64);
    ASSERT_EQ(y.sizes(), ref.sizes());
    // The standard float32 summation bound, elementwise: |fl(sum) - sum| <= n u sum|x_i w_i| (+ the
    // bias term), u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5).
    const double u = std::ldexp(1.0, -24);
    auto mag = torch::matmul(x.abs().to(torch::kFloat64), w.abs().to(torch::kFloat64).t()) + b.abs().to(torch::kFloat64);
    auto bound = mag * (static_cast<double>(in + 1) * u) + 1e-12;
    EXPECT_TRUE(((y.to(torch::kFloat64) - ref).abs() <= bound).all().item<bool>()) << rows << "x" << in << "x" << out;
    auto nob = pw.linear(x, w, torch::Tensor());
    EXPECT_TRUE(((nob.to(torch::kFloat64) - (ref - b.to(torch::kFloat64))).abs() <= bound).all().item<bool>());
  }
}

TEST(PackedWeights, RepacksAfterAnInPlaceChange) {
  REQUIRE_PACKING();
  PackedWeights pw;
  auto w = torch::randn({9, 13});
  auto x = torch::randn({2, 13});
  pw.linear(x, w, {});
  {
    torch::NoGradGuard ng;
    w.mul_(-2.0);  // as an optimizer step does
  }
  auto y = pw.linear(x, w, {});
  auto ref = torch::matmul(x.to(torch::kFloat64), w.to(torch::kFloat64).t());
  EXPECT_LT((y.to(torch::kFloat64) - ref).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(pw.size(), 1u);
}

TEST(PackedWeights, ScopeRoutesTheModelsLinearsOnlyWithoutGrad) {
  REQUIRE_PACKING();
  ModelSpec s;
  s.architecture = "Qwen2ForCausalLM";  // attention biases: the packed path carries them
  s.attention_bias = true;
  s.vocab_size = 301;
  s.hidden_size = 48;
  s.intermediate_size = 80;
  s.num_hidden_layers = 2;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 12;
  s.max_position_embeddings = 64;
  torch::manual_seed(4);
  Transformer m(s);
  m->eval();
  auto ids = torch::randint(0, 301, {3, 11}, torch::kInt64);
  torch::Tensor plain, packed;
  PackedWeights pw;
  {
    torch::InferenceMode im;
    plain = m->logits(m->forward(ids).hidden);
    PackedWeightsScope scope(&pw);
    packed = m->logits(m->forward(ids).hidden);
  }
  // 2 layers x (q, k, v, o, gate, up, down).
  EXPECT_EQ(pw.size(), 14u);
  EXPECT_LT((packed - plain).abs().max().item<float>(), 1e-4 * plain.abs().max().item<float>());
  // With grad mode on (training), the scope changes nothing.
  PackedWeights unused;
  PackedWeightsScope scope(&unused);
  auto trained = m->logits(m->forward(ids).hidden);
  EXPECT_EQ(unused.size(), 0u);
  EXPECT_TRUE(trained.requires_grad());
}

}  // namespace
