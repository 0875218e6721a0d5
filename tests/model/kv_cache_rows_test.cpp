// copy_row_prefixes (grpo/model/kv_cache_rows.h) against values known independently: the K/V
// tensors written into the source cache, cut with torch slicing, and KVCache::copy_row's full copy.
#include <gtest/gtest.h>

#include "grpo/model/kv_cache_rows.h"
#include "grpo/model/transformer.h"
#include "grpo/util/error.h"

namespace grpo::model {
namespace {

ModelSpec tiny_spec() {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.1;
  return spec_from_config(c);
}

// Views of the cache's buffers over slots 0 .. max_length()-1 (write with no token writes nothing).
std::pair<torch::Tensor, torch::Tensor> filled(KVCache& cache, int64_t layer) {
  auto none = torch::empty({cache.batch(), 1, 0, 1});
  return cache.write(layer, none, none);
}

// Fills `cache` (lengths all 0) with random K/V [B, Hkv, T, hd] per layer, right-padded: row b
// counts len[b] tokens. Returns what was written, per layer {k, v}.
std::vector<std::pair<torch::Tensor, torch::Tensor>> fill(KVCache& cache, const ModelSpec& spec, int64_t T,
                                                           const std::vector<int64_t>& len) {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> kv;
  for (int64_t l = 0; l < cache.num_layers(); ++l) {
    auto k = torch::randn({cache.batch(), spec.num_key_value_heads, T, spec.head_dim});
    auto v = torch::randn({cache.batch(), spec.num_key_value_heads, T, spec.head_dim});
    cache.write(l, k, v);
    kv.emplace_back(k, v);
  }
  cache.advance(torch::tensor(len, torch::kInt64));
  return kv;
}

TEST(KvCacheRows, CopiesFilledPrefixesIntoASmallerCache) {
  torch::manual_seed(3);
  const ModelSpec spec = tiny_spec();
  KVCache src(spec, 3, 16);
  auto written = fill(src, spec, 9, {4, 9, 1});
  // The destination: 4 rows of capacity 10 (src's is 16), holding other values and lengths.
  KVCache dst(spec, 4, 10);
  auto before = fill(dst, spec, 7, {7, 2, 5, 3});
  copy_row_prefixes(dst, {2, 0}, src, {1, 0});  // src row 1 (9 tokens) -> dst row 2, row 0 (4) -> row 0
  EXPECT_TRUE(torch::equal(dst.lengths(), torch::tensor({4, 2, 9, 3}, torch::kInt64)));
  EXPECT_EQ(dst.max_length(), 9);
  for (int64_t l = 0; l < 2; ++l) {
    auto [dk, dv] = filled(dst, l);
    const auto& [wk, wv] = written[l];
    const auto& [bk, bv] = before[l];
    EXPECT_TRUE(torch::equal(dk[2].narrow(1, 0, 9), wk[1].narrow(1, 0, 9))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[2].narrow(1, 0, 9), wv[1].narrow(1, 0, 9))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dk[0].narrow(1, 0, 4), wk[0].narrow(1, 0, 4))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[0].narrow(1, 0, 4), wv[0].narrow(1, 0, 4))) << "layer " << l;
    // Past the copied length, and in rows not copied to, dst keeps what it had.
    EXPECT_TRUE(torch::equal(dk[0].narrow(1, 4, 3), bk[0].narrow(1, 4, 3))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dk[1].narrow(1, 0, 7), bk[1])) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[3].narrow(1, 0, 7), bv[3])) << "layer " << l;
    // The source is unchanged.
    auto [sk, sv] = filled(src, l);
    EXPECT_TRUE(torch::equal(sk, wk) && torch::equal(sv, wv)) << "layer " << l;
  }
  EXPECT_TRUE(torch::equal(src.lengths(), torch::tensor({4, 9, 1}, torch::kInt64)));
}

// Equal capacities: the filled slots and lengths are those of KVCache::copy_row's full copy, so a
// decode step on the copied rows gives the same logits.
TEST(KvCacheRows, AgreesWithFullRowCopyAndDecodesTheSame) {
  torch::manual_seed(5);
  Transformer model(tiny_spec());
  model->eval();
  torch::NoGradGuard ng;
  const std::vector<int64_t> lens = {3, 7, 5};
  auto prompt = torch::randint(0, 97, {3, 7}, torch::kInt64), mask = torch::zeros({3, 7}, torch::kInt64);
  for (int64_t b = 0; b < 3; ++b) mask[b].narrow(0, 0, lens[b]).fill_(1);
  auto src = model->make_cache(3, 12);
  model->forward(prompt, mask, &src);
  auto full = model->make_cache(2, 12), prefix = model->make_cache(2, 12), small = model->make_cache(2, 8);
  for (auto* c : {&full, &prefix, &small}) model->forward(torch::randint(0, 97, {2, 6}, torch::kInt64), {}, c);
  full.copy_row(0, src, 2);
  full.copy_row(1, src, 1);
  copy_row_prefixes(prefix, {0, 1}, src, {2, 1});
  copy_row_prefixes(small, {0, 1}, src, {2, 1});
  EXPECT_TRUE(torch::equal(prefix.lengths(), full.lengths()));
  EXPECT_TRUE(torch::equal(small.lengths(), full.lengths()));
  for (int64_t l = 0; l < 2; ++l) {
    auto [fk, fv] = filled(full, l);
    for (auto* c : {&prefix, &small}) {
      auto [pk, pv] = filled(*c, l);
      for (int64_t r = 0; r < 2; ++r) {
        const int64_t n = lens[r == 0 ? 2 : 1];
        EXPECT_TRUE(torch::equal(pk[r].narrow(1, 0, n), fk[r].narrow(1, 0, n))) << "layer " << l << " row " << r;
        EXPECT_TRUE(torch::equal(pv[r].narrow(1, 0, n), fv[r].narrow(1, 0, n))) << "layer " << l << " row " << r;
      }
    }
  }
  auto next = torch::tensor({{11}, {42}}, torch::kInt64);
  auto ref = model->logits(model->forward(next, {}, &full).hidden);
  EXPECT_TRUE(torch::equal(model->logits(model->forward(next, {}, &prefix).hidden), ref));
  EXPECT_TRUE(torch::allclose(model->logits(model->forward(next, {}, &small).hidden), ref, 1e-5, 1e-6));
}

// bf16 buffers (the rollout's cache under trainer.bf16): the copied slots hold the source's bits.
TEST(KvCacheRows, Bf16CachesCopyTheSameBits) {
  torch::manual_seed(9);
  const ModelSpec spec = tiny_spec();
  KVCache src(spec, 2, 12, torch::kBFloat16), full(spec, 2, 12, torch::kBFloat16), dst(spec, 2, 6, torch::kBFloat16);
  fill(src, spec, 5, {5, 2});
  full.copy_row(0, src, 1);
  full.copy_row(1, src, 0);
  copy_row_prefixes(dst, {0, 1}, src, {1, 0});
  EXPECT_TRUE(torch::equal(dst.lengths(), full.lengths()));
  for (int64_t l = 0; l < 2; ++l) {
    auto [fk, fv] = filled(full, l);
    auto [dk, dv] = filled(dst, l);
    EXPECT_EQ(dk.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(dk[0].narrow(1, 0, 2), fk[0].narrow(1, 0, 2))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[1], fv[1])) << "layer " << l;  // 5 tokens: the whole filled prefix
  }
}

// row_slot_views / write_row_slots (the rollout's side prefill of tool results): the views are the
// K/V written into those slots; writing them into other rows at their lengths puts exactly those
// values there, advances those rows and leaves every other slot as it was.
TEST(KvCacheRows, SlotViewsAndWritesMoveTheKVWritten) {
  torch::manual_seed(11);
  const ModelSpec spec = tiny_spec();
  KVCache src(spec, 2, 16);
  auto written = fill(src, spec, 9, {6, 9});
  const RowSlots a = row_slot_views(src, 1, 2, 5), b = row_slot_views(src, 0, 0, 6);
  EXPECT_EQ(a.size(), 5);
  EXPECT_EQ(b.size(), 6);
  KVCache dst(spec, 3, 12);
  auto before = fill(dst, spec, 4, {4, 2, 3});
  write_row_slots(dst, {2, 0}, {3, 4}, {&a, &b});
  EXPECT_TRUE(torch::equal(dst.lengths(), torch::tensor({10, 2, 8}, torch::kInt64)));
  EXPECT_EQ(dst.max_length(), 10);
  for (int64_t l = 0; l < 2; ++l) {
    const auto& [wk, wv] = written[l];
    const auto& [bk, bv] = before[l];
    EXPECT_TRUE(torch::equal(a.k[l], wk[1].narrow(1, 2, 5))) << "layer " << l;
    EXPECT_TRUE(torch::equal(b.v[l], wv[0].narrow(1, 0, 6))) << "layer " << l;
    auto [dk, dv] = filled(dst, l);
    EXPECT_TRUE(torch::equal(dk[2].narrow(1, 3, 5), wk[1].narrow(1, 2, 5))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[2].narrow(1, 3, 5), wv[1].narrow(1, 2, 5))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dk[0].narrow(1, 4, 6), wk[0].narrow(1, 0, 6))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[0].narrow(1, 4, 6), wv[0].narrow(1, 0, 6))) << "layer " << l;
    // The slots before each write and the rows not written keep what they had.
    EXPECT_TRUE(torch::equal(dk[2].narrow(1, 0, 3), bk[2].narrow(1, 0, 3))) << "layer " << l;
    EXPECT_TRUE(torch::equal(dv[0].narrow(1, 0, 4), bv[0])) << "layer " << l;
    EXPECT_TRUE(torch::equal(dk[1].narrow(1, 0, 4), bk[1])) << "layer " << l;
  }
  // A write must start at the row's length, and views must stay within the filled slots.
  EXPECT_THROW(write_row_slots(dst, {1}, {3}, {&a}), InternalError);
  EXPECT_THROW(row_slot_views(src, 0, 2, 5), InternalError);  // row 0 holds 6 tokens
  EXPECT_THROW(write_row_slots(dst, {1, 1}, {2, 2}, {&a, &a}), InternalError);
  EXPECT_THROW(write_row_slots(dst, {0}, {10}, {&a}), InternalError);  // 10 + 5 > capacity 12
}

TEST(KvCacheRows, RefusesRepeatedRowsAndRowsLongerThanTheCapacity) {
  const ModelSpec spec = tiny_spec();
  KVCache src(spec, 2, 16), dst(spec, 2, 4);
  fill(src, spec, 6, {6, 3});
  EXPECT_THROW(copy_row_prefixes(dst, {0}, src, {0}), InternalError);  // 6 tokens, capacity 4
  EXPECT_THROW(copy_row_prefixes(dst, {1, 1}, src, {1, 1}), InternalError);
  copy_row_prefixes(dst, {1}, src, {1});
  EXPECT_TRUE(torch::equal(dst.lengths(), torch::tensor({0, 3}, torch::kInt64)));
}

}  // namespace
}  // namespace grpo::model
