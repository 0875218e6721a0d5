// train::bf16_frozen_linears: the CPU bf16 reference model's linears rounded to bf16 once. Its
// log-probs equal, to the bit, those of the same frozen model with float32 weights under autocast
// (which rounds the same weights on every forward); a re-sync rounds the new weights; float32
// training and the weights autocast does not round (embeddings, norms) are left alone.
#include <gtest/gtest.h>

#include "grpo/model/block.h"
#include "grpo/train/autocast.h"
#include "grpo/train/policy.h"
#include "grpo/train/token_batch.h"

namespace grpo::train {
namespace {

model::Transformer tiny(uint64_t seed) {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.1;
  torch::manual_seed(seed);
  return model::Transformer(model::spec_from_config(c));
}

TokenBatch batch() {
  std::vector<int64_t> p1 = {5, 9, 14, 3}, p2 = {7, 1}, c1 = {40, 41, 42, 43, 44}, c2 = {60, 61, 62};
  return make_token_batch({&p1, &p2}, {&c1, &c2}, 0, torch::kCPU);
}

torch::Tensor bf16_logprobs(model::Transformer& m) {
  torch::NoGradGuard ng;
  return completion_logprobs(m, batch(), 1.0, /*bf16=*/true, 4096).logprobs;
}

const auto& q_weight(model::Transformer& m, int layer) {
  return m->layers->at<model::BlockImpl>(layer).self_attn->q_proj->weight;
}

TEST(Bf16FrozenLinears, SameLogprobsAsAutocastOnFloat32Weights) {
  auto policy = tiny(1);
  auto ref32 = clone_frozen(policy);
  auto ref16 = clone_frozen(policy);
  EXPECT_EQ(bf16_frozen_linears(ref16, true), 2 * 7);  // q, k, v, o, gate, up, down per layer; no biases
  EXPECT_EQ(q_weight(ref16, 1).scalar_type(), torch::kBFloat16);
  EXPECT_EQ(ref16->layers->at<model::BlockImpl>(0).mlp->down_proj->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(ref16->embed_tokens->weight.scalar_type(), torch::kFloat32);
  EXPECT_EQ(ref16->layers->at<model::BlockImpl>(0).input_layernorm->weight.scalar_type(), torch::kFloat32);
  auto a = bf16_logprobs(ref32), b = bf16_logprobs(ref16);
  EXPECT_TRUE(torch::equal(a, b)) << (a - b).abs().max().item<double>();
  // The bf16 forward differs from float32 at all: otherwise the equality above would say nothing.
  torch::NoGradGuard ng;
  auto f = completion_logprobs(ref32, batch(), 1.0, /*bf16=*/false, 4096).logprobs;
  EXPECT_GT((f - a).abs().max().item<double>(), 1e-5);
}

TEST(Bf16FrozenLinears, ResyncRoundsTheNewWeights) {
  auto policy = tiny(2);
  auto ref = clone_frozen(policy);
  ASSERT_GT(bf16_frozen_linears(ref, true), 0);
  {
    torch::NoGradGuard ng;
    for (auto& p : policy->parameters()) p.add_(torch::randn_like(p) * 0.01);
  }
  copy_weights(ref, policy);
  EXPECT_TRUE(torch::equal(q_weight(ref, 0), q_weight(policy, 0).to(torch::kBFloat16)));
  auto fresh = clone_frozen(policy);
  EXPECT_TRUE(torch::equal(bf16_logprobs(ref), bf16_logprobs(fresh)));
}

TEST(Bf16FrozenLinears, Float32TrainingIsLeftAlone) {
  auto policy = tiny(3);
  auto ref = clone_frozen(policy);
  EXPECT_EQ(bf16_frozen_linears(ref, false), 0);
  EXPECT_EQ(q_weight(ref, 0).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace grpo::train
