// trainer.bf16: Bf16Autocast's CUDA scope (state set and restored) on any machine;
// on a CUDA device, completion_logprobs under bf16 autocast against the float32 forward, with
// float32 parameters and gradients.
#include <gtest/gtest.h>

#include <ATen/autocast_mode.h>

#include "grpo/model/transformer.h"
#include "grpo/train/autocast.h"
#include "grpo/train/token_batch.h"

namespace grpo::train {
namespace {

model::ModelSpec tiny_spec() {
  config::ModelConfig c;
  c.vocab_size = 53;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.05;
  c.moe.num_experts = 4;
  c.moe.num_experts_per_tok = 2;
  c.moe.moe_intermediate_size = 32;
  c.moe.first_k_dense_replace = 1;
  return model::spec_from_config(c);
}

TEST(Bf16Autocast, ScopeSetsAndRestoresTheCudaAutocastState) {
  // Only thread-local dispatcher state: needs no GPU.
  ASSERT_FALSE(at::autocast::is_autocast_enabled(at::kCUDA));
  const auto before = at::autocast::get_autocast_dtype(at::kCUDA);
  {
    Bf16Autocast outer(true, torch::Device(torch::kCUDA, 0));
    EXPECT_TRUE(outer.active());
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCUDA));
    EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCUDA), at::kBFloat16);
    {
      Bf16Autocast inner(true, torch::Device(torch::kCUDA, 0));
      EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCUDA));
    }
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCUDA)) << "the inner scope ended the outer one";
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCUDA));
  EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCUDA), before);
}

TEST(Bf16Autocast, CpuScopeLeavesCudaAloneAndOffDoesNothing) {
  {
    // The CPU scope (tests/train/bf16_cpu_test.cpp) touches only the CPU's autocast state.
    Bf16Autocast ac(true, torch::Device(torch::kCPU));
    EXPECT_TRUE(ac.active());
    EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCUDA));
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  Bf16Autocast off(false, torch::Device(torch::kCUDA, 0));
  EXPECT_FALSE(off.active());
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCUDA));
}

TEST(Bf16Autocast, CudaLogprobsCloseToFloat32WithFloat32MasterWeights) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the bf16 forward is checked on GPU machines only";
  torch::manual_seed(11);
  model::Transformer model(tiny_spec());
  model->to(torch::Device(torch::kCUDA, 0));
  model->train();
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 9, 2}, {3, 4}}, comps = {{7, 8, 9, 10, 11}, {12, 13, 14}};
  std::vector<const std::vector<int64_t>*> ps = {&prompts[0], &prompts[1]}, cs = {&comps[0], &comps[1]};
  auto tb = make_token_batch(ps, cs, 0, model->device());

  auto ref = completion_logprobs(model, tb, 1.0, false);
  auto ref_loss = -(ref.logprobs * tb.completion_mask).sum();
  ref_loss.backward();
  std::map<std::string, torch::Tensor> ref_grads;
  for (const auto& p : model->named_parameters())
    if (p.value().grad().defined()) ref_grads[p.key()] = p.value().grad().clone();
  model->zero_grad();

  auto lp = completion_logprobs(model, tb, 1.0, true);
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCUDA)) << "autocast leaked out of completion_logprobs";
  EXPECT_EQ(lp.logprobs.scalar_type(), torch::kFloat32);
  auto loss = -(lp.logprobs * tb.completion_mask).sum();
  loss.backward();
  // bf16 keeps 8 mantissa bits (relative rounding 2^-9 ~ 2e-3) per matmul; over two blocks and a
  // log-softmax of 53 classes the log-probs (about -4) move by a few 1e-2 at most.
  auto m = tb.completion_mask.to(torch::kBool);
  const double diff = (lp.logprobs - ref.logprobs).masked_select(m).abs().max().item<double>();
  EXPECT_LT(diff, 5e-2);
  EXPECT_GT(diff, 0.0) << "bit-identical to float32: autocast did not run";
  for (const auto& p : model->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
    if (!ref_grads.count(p.key())) continue;
    const auto& g = p.value().grad();
    ASSERT_TRUE(g.defined()) << p.key();
    EXPECT_EQ(g.scalar_type(), torch::kFloat32) << p.key();
    // Gradients agree in direction: cosine similarity with the float32 gradient.
    auto a = g.reshape({-1}).to(torch::kFloat64), b = ref_grads[p.key()].reshape({-1}).to(torch::kFloat64);
    const double nb = b.norm().item<double>();
    if (nb < 1e-8) continue;
    const double cos = (a.dot(b) / (a.norm() * nb)).item<double>();
    EXPECT_GT(cos, 0.99) << p.key();
  }
}

}  // namespace
}  // namespace grpo::train
