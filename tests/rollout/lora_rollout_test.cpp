// The rollout engine generates with LoRA adapters applied (model/lora.h): the adapters' term is
// added on top of the packed (oneDNN) base product, so tokens and logprobs equal those of the
// unmerged full forward; switching the adapters off gives the base model's rollout.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fake_tokenizer.h"
#include "grpo/model/lora.h"
#include "grpo/rollout/engine.h"

using namespace grpo;
using namespace grpo::rollout;
using grpo::rollout::testing::FakeTokenizer;

namespace {

model::Transformer lora_model() {
  model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 260;
  s.hidden_size = 64;
  s.intermediate_size = 128;
  s.num_hidden_layers = 2;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 16;
  s.max_position_embeddings = 64;
  s.initializer_range = 0.3;  // peaked distributions: greedy argmaxes are not float32 near-ties
  torch::manual_seed(1234);
  model::Transformer m(s);
  config::LoraConfig c;
  c.r = 4;
  c.lora_alpha = 8;
  c.init_lora_weights = config::LoraInit::RANDOM;  // B != 0: the adapters change the output
  model::apply_lora(*m, c);
  m->eval();
  return m;
}

// Greedy continuation by full forwards without a cache (the plain, unpacked path).
std::vector<int64_t> full_greedy(model::Transformer& m, std::vector<int64_t> ids, int n, std::vector<float>* lps) {
  torch::NoGradGuard ng;
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i) {
    auto x = torch::tensor(ids, torch::kInt64).view({1, -1});
    auto lp = m->logits(m->forward(x).hidden)[0][-1].log_softmax(-1);
    const int64_t t = lp.argmax().item<int64_t>();
    if (lps) lps->push_back(lp[t].item<float>());
    out.push_back(t);
    ids.push_back(t);
  }
  return out;
}

}  // namespace

TEST(LoraRollout, GreedyTokensAndLogprobsEqualUnmergedFullForward) {
  torch::set_num_threads(1);
  auto m = lora_model();
  FakeTokenizer tok;
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 12;
  RolloutEngine engine(m, tok, p, EngineLimits{4, 0});
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 99}, {1, 2, 3, 4, 5, 6, 7}};
  auto out = engine.generate(prompts, 1, 7);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& c : out) {
    std::vector<float> lps;
    const auto want = full_greedy(m, prompts[c.prompt_index], static_cast<int>(c.token_ids.size()), &lps);
    EXPECT_EQ(c.token_ids, want) << "prompt " << c.prompt_index;
    for (size_t t = 0; t < lps.size(); ++t) EXPECT_NEAR(c.logprobs[t], lps[t], 1e-4) << "token " << t;
  }

  // The adapters matter here (else the check above could not fail), and switched off the engine
  // generates the base model's tokens.
  model::LoraDisabled off(*m);
  auto base = engine.generate(prompts, 1, 7);
  bool differs = false;
  for (const auto& c : base) {
    EXPECT_EQ(c.token_ids, full_greedy(m, prompts[c.prompt_index], static_cast<int>(c.token_ids.size()), nullptr));
    differs = differs || c.token_ids != out[c.prompt_index].token_ids;
  }
  EXPECT_TRUE(differs) << "the adapters should change the greedy tokens of this model";
}
