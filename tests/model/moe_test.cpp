// MoE routing and balancing against hand computations.
#include <gtest/gtest.h>

#include "grpo/model/bf16_autocast.h"
#include "grpo/model/moe.h"
#include "grpo/model/transformer.h"
#include "test_support.h"

namespace grpo::model {
namespace {

ModelSpec moe_spec(config::RouterScoring scoring, bool norm) {
  config::ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.moe.num_experts = 4;
  c.moe.num_experts_per_tok = 2;
  c.moe.scoring_func = scoring;
  c.moe.norm_topk_prob = norm;
  c.moe.bias_update_speed = 0.01;
  return spec_from_config(c);
}

// Reference MoE in float64, token by token, written from the DeepSeek-V3 equations: scores
// s = sigmoid(logits) (or softmax), selection by top-k of s + bias, gate weights from s (not biased),
// optionally renormalised.
torch::Tensor reference(MoeImpl& m, const torch::Tensor& x, bool sigmoid, bool norm) {
  auto x64 = x.to(torch::kFloat64).reshape({-1, x.size(-1)});
  auto logits = torch::matmul(x64, m.gate->weight.to(torch::kFloat64).t());
  auto s = sigmoid ? torch::sigmoid(logits) : torch::softmax(logits, -1);
  auto bias = m.e_score_correction_bias.to(torch::kFloat64);
  auto out = torch::zeros_like(x64);
  for (int64_t n = 0; n < x64.size(0); ++n) {
    auto idx = std::get<1>(torch::topk(s[n] + bias, 2));
    auto w = s[n].index_select(0, idx);
    if (norm) w = w / w.sum();
    for (int64_t j = 0; j < 2; ++j) {
      auto& e = m.experts->at<MlpImpl>(idx[j].item<int64_t>());
      auto g = torch::matmul(e.gate_proj->weight.to(torch::kFloat64), x64[n]);
      auto u = torch::matmul(e.up_proj->weight.to(torch::kFloat64), x64[n]);
      out[n] += w[j] * torch::matmul(e.down_proj->weight.to(torch::kFloat64), g * torch::sigmoid(g) * u);
    }
  }
  return out.reshape(x.sizes());
}

TEST(Moe, SigmoidRoutingWithBiasMatchesFloat64Reference) {
  torch::manual_seed(3);
  auto spec = moe_spec(config::RouterScoring::SIGMOID, true);
  Moe moe(spec);
  for (auto& p : moe->parameters()) p.data().normal_(0, 0.3);
  auto x = torch::randn({2, 5, 16});
  // A bias large enough to force expert 3 into every token's top-2: it changes selection only.
  moe->e_score_correction_bias.copy_(torch::tensor({0.0f, 0.0f, 0.0f, 5.0f}));
  auto [y, st] = moe->forward(x, {});
  // float32 against float64: a few ulps of the output magnitude.
  EXPECT_LE(testing::rel_err(y, reference(*moe, x, true, true)), 1e-5);
  EXPECT_EQ(st.load[3].item<float>(), 10.0f);
  EXPECT_EQ(st.load.sum().item<float>(), 20.0f);
}

TEST(Moe, SoftmaxRoutingWithoutRenormMatchesFloat64Reference) {
  torch::manual_seed(4);
  Moe moe(moe_spec(config::RouterScoring::SOFTMAX, false));
  for (auto& p : moe->parameters()) p.data().normal_(0, 0.3);
  auto x = torch::randn({3, 4, 16});
  auto valid = torch::ones({12});
  valid.narrow(0, 8, 4).zero_();
  auto [y, st] = moe->forward(x, valid);
  EXPECT_LE(testing::rel_err(y, reference(*moe, x, false, false)), 1e-5);
  EXPECT_EQ(st.load.sum().item<float>(), 16.0f);  // 8 valid tokens x top-2
  EXPECT_EQ(st.valid_tokens.item<float>(), 8.0f);
}

TEST(Moe, RouterStaysFloat32UnderBf16Autocast) {
  // trainer.bf16 on the CPU: the experts' products run in bf16, the router's in float32 (selective
  // precision, Switch Transformers sec. 2.4). aux_probs is the sum over tokens of the router's
  // softmax: against a float64 reference it is float32-close, while the same sum from a bf16
  // router product is off by ~1e-3 (checked below, so the bound tells the two apart).
  torch::manual_seed(6);
  Moe moe(moe_spec(config::RouterScoring::SOFTMAX, true));
  for (auto& p : moe->parameters()) p.data().normal_(0, 0.3);
  auto x = torch::randn({2, 8, 16});
  auto x64 = x.to(torch::kFloat64).reshape({-1, 16});
  auto ref = torch::softmax(torch::matmul(x64, moe->gate->weight.to(torch::kFloat64).t()), -1).sum(0);
  auto bf16_router = torch::softmax(
      torch::matmul(x.reshape({-1, 16}).to(torch::kBFloat16), moe->gate->weight.to(torch::kBFloat16).t()).to(torch::kFloat64), -1)
                         .sum(0);
  ASSERT_GT(testing::rel_err(bf16_router, ref), 1e-4);
  torch::Tensor y;
  MoeStats st;
  {
    Bf16Autocast autocast(true, torch::Device(torch::kCPU));
    ASSERT_TRUE(autocast.active());
    std::tie(y, st) = moe->forward(x, {});
  }
  EXPECT_EQ(st.aux_probs.scalar_type(), torch::kFloat32);
  EXPECT_LE(testing::rel_err(st.aux_probs, ref), 1e-5);
  // The experts did run in bf16: their output is bf16-far from the float64 reference.
  EXPECT_GT(testing::rel_err(y.to(torch::kFloat32), reference(*moe, x, false, true)), 1e-4);
}

TEST(Moe, UpdateExpertBiasFollowsSignOfLoadDeficit) {
  torch::manual_seed(5);
  Transformer model(moe_spec(config::RouterScoring::SIGMOID, true));
  model->train();
  auto ids = torch::randint(0, 32, {4, 6}, torch::kInt64);
  auto out = model->forward(ids);
  auto load = out.expert_load[0].clone();
  model->update_expert_bias();
  auto& moe = model->layers->at<BlockImpl>(0).moe;
  auto want = torch::sign(load.mean() - load) * 0.01;
  EXPECT_TRUE(torch::allclose(moe->e_score_correction_bias, want));
  // Loads were consumed: a second update without forwards changes nothing (sign(0) = 0).
  model->update_expert_bias();
  EXPECT_TRUE(torch::allclose(moe->e_score_correction_bias, want));
  // Eval-mode forwards (rollouts) do not count towards the balance.
  model->eval();
  model->forward(ids);
  model->update_expert_bias();
  EXPECT_TRUE(torch::allclose(moe->e_score_correction_bias, want));
}

TEST(Moe, AuxLossIsDifferentiableAndCountsParameters) {
  torch::manual_seed(6);
  auto spec = moe_spec(config::RouterScoring::SOFTMAX, true);
  Transformer model(spec);
  auto out = model->forward(torch::randint(0, 32, {2, 5}, torch::kInt64));
  out.aux_loss.backward();
  EXPECT_GT(model->layers->at<BlockImpl>(0).moe->gate->weight.grad().abs().sum().item<float>(), 0.0f);
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  EXPECT_EQ(n, spec.parameter_count());
  // active = total - (E - k) experts' SwiGLU weights
  EXPECT_EQ(spec.active_parameter_count(), n - 2 * 3 * 16 * 32);
}

}  // namespace
}  // namespace grpo::model
