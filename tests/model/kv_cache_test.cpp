// Incremental decoding with the KV cache against full forwards (the float64-free invariant: a
// causal model's logit at position t depends only on tokens <= t, so both paths must agree).
#include <gtest/gtest.h>

#include "grpo/model/transformer.h"
#include "test_support.h"

namespace grpo::model {
namespace {

ModelSpec small_spec(bool moe) {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.1;
  if (moe) {
    c.moe.num_experts = 4;
    c.moe.num_experts_per_tok = 2;
    c.moe.n_shared_experts = 1;
    c.moe.moe_intermediate_size = 32;
  }
  return spec_from_config(c);
}

class KvCacheTest : public ::testing::TestWithParam<bool> {};

// Three sequences of different prompt lengths (right-padded prefill), then 6 decode steps; every
// step's logits must equal the full forward's logits at the same position.
TEST_P(KvCacheTest, IncrementalDecodingMatchesFullForward) {
  torch::manual_seed(7);
  Transformer model(small_spec(GetParam()));
  model->eval();
  torch::NoGradGuard ng;
  const std::vector<int64_t> prompt_len = {5, 2, 8};
  const int64_t steps = 6, B = 3, Tp = 8;
  auto full = torch::randint(0, 97, {B, Tp + steps}, torch::kInt64);
  auto prompt = torch::zeros({B, Tp}, torch::kInt64), mask = torch::zeros({B, Tp}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    prompt[b].narrow(0, 0, prompt_len[b]).copy_(full[b].narrow(0, 0, prompt_len[b]));
    mask[b].narrow(0, 0, prompt_len[b]).fill_(1);
  }
  auto cache = model->make_cache(B, Tp + steps);
  auto h = model->forward(prompt, mask, &cache).hidden;
  for (int64_t b = 0; b < B; ++b) {
    auto ref = model->logits(model->forward(full[b].narrow(0, 0, prompt_len[b]).unsqueeze(0)).hidden)[0];
    EXPECT_LE(testing::rel_err(model->logits(h[b].narrow(0, 0, prompt_len[b])), ref), 1e-5) << "prefill row " << b;
  }
  for (int64_t s = 0; s < steps; ++s) {
    auto next = torch::zeros({B, 1}, torch::kInt64);
    for (int64_t b = 0; b < B; ++b) next[b][0] = full[b][prompt_len[b] + s];
    auto step_logits = model->logits(model->forward(next, {}, &cache).hidden).select(1, 0);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = prompt_len[b] + s + 1;
      auto ref = model->logits(model->forward(full[b].narrow(0, 0, n).unsqueeze(0)).hidden)[0][n - 1];
      EXPECT_LE(testing::rel_err(step_logits[b], ref), 1e-5) << "step " << s << " row " << b;
    }
  }
  auto lengths = cache.lengths();
  for (int64_t b = 0; b < B; ++b) EXPECT_EQ(lengths[b].item<int64_t>(), prompt_len[b] + steps);
}

// Left-padded full forward (positions from the mask) equals the unpadded forward.
TEST_P(KvCacheTest, LeftPaddingInFullForward) {
  torch::manual_seed(8);
  Transformer model(small_spec(GetParam()));
  model->eval();
  torch::NoGradGuard ng;
  auto ids = torch::randint(0, 97, {1, 5}, torch::kInt64);
  auto padded = torch::cat({torch::zeros({1, 3}, torch::kInt64), ids}, 1);
  auto mask = torch::cat({torch::zeros({1, 3}, torch::kInt64), torch::ones({1, 5}, torch::kInt64)}, 1);
  auto a = model->logits(model->forward(padded, mask).hidden).narrow(1, 3, 5);
  auto b = model->logits(model->forward(ids).hidden);
  EXPECT_LE(testing::rel_err(a, b), 1e-5);
  EXPECT_FALSE(model->logits(model->forward(padded, mask).hidden).isnan().any().item<bool>());
}

// One prefilled prompt fans out to G rows; select_rows drops rows; copy_row duplicates a row.
TEST_P(KvCacheTest, RepeatSelectAndCopyRows) {
  torch::manual_seed(9);
  Transformer model(small_spec(GetParam()));
  model->eval();
  torch::NoGradGuard ng;
  auto prompt = torch::randint(0, 97, {2, 4}, torch::kInt64);
  auto cache = model->make_cache(2, 10);
  model->forward(prompt, {}, &cache);
  cache.select_rows(torch::tensor({0, 0, 0, 1, 1, 1}, torch::kInt64));  // rows: p0 p0 p0 p1 p1 p1
  ASSERT_EQ(cache.batch(), 6);
  auto next = torch::randint(0, 97, {6, 1}, torch::kInt64);
  auto step = model->logits(model->forward(next, {}, &cache).hidden);
  for (int64_t r = 0; r < 6; ++r) {
    auto seq = torch::cat({prompt[r / 3], next[r]}).unsqueeze(0);
    auto ref = model->logits(model->forward(seq).hidden)[0][4];
    EXPECT_LE(testing::rel_err(step[r][0], ref), 1e-5) << "row " << r;
  }
  cache.select_rows(torch::tensor({4, 1}, torch::kInt64));
  ASSERT_EQ(cache.batch(), 2);
  auto next2 = torch::randint(0, 97, {2, 1}, torch::kInt64);
  auto step2 = model->logits(model->forward(next2, {}, &cache).hidden);
  const int64_t kept[2] = {4, 1};
  for (int64_t i = 0; i < 2; ++i) {
    const int64_t r = kept[i];
    auto seq = torch::cat({prompt[r / 3], next[r], next2[i]}).unsqueeze(0);
    EXPECT_LE(testing::rel_err(step2[i][0], model->logits(model->forward(seq).hidden)[0][5]), 1e-5);
  }
  auto other = model->make_cache(2, 10);
  other.copy_row(1, cache, 0);
  EXPECT_EQ(other.lengths()[1].item<int64_t>(), 6);
}

// A bf16 cache (the rollout's under trainer.bf16) stores what a float32 cache stores, rounded to
// bf16 by torch's own cast, and leaves the other slots alone (its write scatters through an int16
// view of the same bits: kv_cache.cpp).
TEST(KvCacheBf16, WritesTheRoundedValuesIntoTheirSlotsOnly) {
  torch::manual_seed(4);
  const ModelSpec spec = small_spec(false);
  KVCache f32(spec, 3, 6, torch::kFloat32), b16(spec, 3, 6, torch::kBFloat16);
  for (auto* c : {&f32, &b16}) c->advance(torch::tensor({0, 2, 1}, torch::kInt64));  // rows of different lengths
  const int64_t H = spec.num_key_value_heads, hd = spec.head_dim;
  auto k = torch::randn({3, H, 2, hd}), v = torch::randn({3, 2, H, hd}).transpose(1, 2);  // v strided, as in attention
  auto [kf, vf] = f32.write(1, k, v);
  auto [kb, vb] = b16.write(1, k, v);
  ASSERT_EQ(kb.scalar_type(), torch::kBFloat16);
  ASSERT_EQ(kb.size(2), 4);  // max length 2 + 2 new tokens
  EXPECT_TRUE(torch::equal(kb, kf.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(vb, vf.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(kb[1].narrow(1, 2, 2), k[1].to(torch::kBFloat16)));  // row 1: slots 2, 3
  EXPECT_EQ(kb[1].narrow(1, 0, 2).abs().sum().item<float>(), 0.f);                // untouched (zeros)
  EXPECT_EQ(kb[2].narrow(1, 3, 1).abs().sum().item<float>(), 0.f);
}

TEST_P(KvCacheTest, ErrorsOnOverflowAndLeftPaddedChunk) {
  Transformer model(small_spec(GetParam()));
  torch::NoGradGuard ng;
  auto cache = model->make_cache(1, 4);
  EXPECT_THROW(model->forward(torch::zeros({1, 5}, torch::kInt64), {}, &cache), InputError);
  auto cache2 = model->make_cache(1, 8);
  EXPECT_THROW(model->forward(torch::zeros({1, 3}, torch::kInt64), torch::tensor({{0, 1, 1}}), &cache2), InputError);
  EXPECT_THROW(model->forward(torch::full({1, 3}, 97, torch::kInt64)), InputError);
}

INSTANTIATE_TEST_SUITE_P(DenseAndMoe, KvCacheTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("moe") : std::string("dense"); });

}  // namespace
}  // namespace grpo::model
