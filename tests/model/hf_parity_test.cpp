// Parity with transformers on tiny random models of every supported architecture
// (scripts/make_tiny_models.py writes the models and transformers' outputs).
#include <gtest/gtest.h>

#include "grpo/model/hf_weights.h"
#include "test_support.h"

namespace grpo::model {
namespace {

using testing::read_tensors;
using testing::rel_err;

class HfParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfParity, LogitsGreedyAndAuxLossMatchTransformers) {
  const std::string dir = testing::tiny_models_dir() + "/" + GetParam();
  auto ref = read_tensors(dir + "/reference.safetensors");
  Transformer model = load_hf(dir);
  model->eval();
  torch::NoGradGuard ng;

  auto out = model->forward(ref["input_ids"], ref["attention_mask"]);
  auto logits = model->logits(out.hidden);
  // Compare real tokens only: transformers does not define logits at padding positions the same way.
  auto valid = ref["attention_mask"].to(torch::kBool);
  // 1e-5 is the acceptance bound; float32 with reassociated sums (SDPA vs eager attention, expert
  // accumulation order) differs from the reference by ~1e-7 relative.
  EXPECT_LE(rel_err(logits.index({valid}), ref["logits"].index({valid})), 1e-5);

  if (ref.count("aux_loss")) {
    ASSERT_EQ(out.moe_layers.size(), out.expert_load.size());
    EXPECT_NEAR(out.aux_loss.item<double>(), ref["aux_loss"].item<double>(), 1e-5 * ref["aux_loss"].item<double>());
    // Every valid token is assigned to top_k experts in every MoE layer.
    for (const auto& load : out.expert_load)
      EXPECT_DOUBLE_EQ(load.sum().item<double>(), double(valid.sum().item<int64_t>() * model->spec().moe.top_k));
  }

  // Greedy decoding through the KV cache must reproduce transformers' 32 full-forward greedy tokens.
  auto prompt = ref["prompt"];
  auto cache = model->make_cache(1, prompt.size(1) + 32);
  auto h = model->forward(prompt, {}, &cache).hidden;
  std::vector<int64_t> got;
  for (int i = 0; i < 32; ++i) {
    auto next = model->logits(h.select(1, h.size(1) - 1)).argmax(-1);
    got.push_back(next.item<int64_t>());
    h = model->forward(next.view({1, 1}), {}, &cache).hidden;
  }
  auto want = ref["greedy"];
  std::vector<int64_t> expected(want.data_ptr<int64_t>(), want.data_ptr<int64_t>() + want.numel());
  EXPECT_EQ(got, expected);
}

INSTANTIATE_TEST_SUITE_P(Archs, HfParity,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe"));

}  // namespace
}  // namespace grpo::model
