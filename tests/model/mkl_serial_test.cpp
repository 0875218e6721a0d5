// model::MklSerial (MKL on one thread around the CPU bf16 SDPA): the scope sets MKL's thread count
// of the calling thread and restores it, the bf16 attention takes it (and float32 does not), and
// the attention's values are those of SDPA without it.
#include <gtest/gtest.h>

#include "grpo/model/bf16_autocast.h"
#include "grpo/model/mkl_serial.h"
#include "grpo/model/transformer.h"

namespace grpo::model {
namespace {

ModelSpec tiny_spec() {
  config::ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 96;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.1;
  return spec_from_config(c);
}

class ThreadsGuard {  // restores LibTorch's (and MKL's) thread count
 public:
  ThreadsGuard() : n_(at::get_num_threads()) {}
  ~ThreadsGuard() { at::set_num_threads(n_); }

 private:
  int n_;
};

TEST(MklSerial, SetsOneThreadAndRestores) {
  if (!MklSerial::available()) GTEST_SKIP() << "LibTorch without MKL";
  ThreadsGuard tg;
  at::set_num_threads(2);  // also MKL's global count
  ASSERT_EQ(MklSerial::mkl_threads(), 2);
  {
    MklSerial s(true);
    EXPECT_TRUE(s.active());
    EXPECT_EQ(MklSerial::mkl_threads(), 1);
    {
      MklSerial inner(true);
      EXPECT_EQ(MklSerial::mkl_threads(), 1);
    }
    EXPECT_EQ(MklSerial::mkl_threads(), 1);  // the inner scope restores the outer's setting
  }
  EXPECT_EQ(MklSerial::mkl_threads(), 2);
  MklSerial off(false);
  EXPECT_FALSE(off.active());
  EXPECT_EQ(MklSerial::mkl_threads(), 2);
}

// A CPU bf16 prefill into a KV cache (autocast, bf16 cache) opens one scope per layer; float32 none.
TEST(MklSerial, Bf16PrefillAttentionTakesTheScope) {
  if (!MklSerial::available()) GTEST_SKIP() << "LibTorch without MKL";
  ThreadsGuard tg;
  at::set_num_threads(2);
  torch::manual_seed(3);
  const ModelSpec spec = tiny_spec();
  Transformer model(spec);
  model->eval();
  torch::NoGradGuard ng;
  const int64_t B = 4, T = 5;
  auto ids = torch::randint(0, 97, {B, T}, torch::kInt64);
  auto mask = torch::ones({B, T}, torch::kInt64);
  for (bool bf16 : {false, true}) {
    KVCache cache(spec, B, T + 2, bf16 ? torch::kBFloat16 : torch::kFloat32);
    Bf16Autocast ac(bf16, torch::kCPU);
    const int64_t before = MklSerial::opened();
    model->forward(ids, mask, &cache);  // prefill
    model->forward(ids.narrow(1, 0, 1), torch::ones({B, 1}, torch::kInt64), &cache);  // one decode step
    // The prefill's bf16 SDPA takes the scope in every layer; the decode step takes
    // cpu_bf16_decode_attention instead where it applies (no MKL: cpu_bf16_decode_attention_test.cpp).
    // (This spec's head_dim 8 has no AVX-512 loop: its decode step keeps the SDPA too.)
    const bool kernel = __builtin_cpu_supports("avx512f") && spec.head_dim % 16 == 0;
    const int64_t decode_sdpa = kernel ? 0 : spec.num_hidden_layers;
    EXPECT_EQ(MklSerial::opened() - before, bf16 ? spec.num_hidden_layers + decode_sdpa : 0) << "bf16 " << bf16;
  }
}

// The scope changes no value: bf16 SDPA at decode shapes (one query over a cache, GQA, a padding
// mask), 2 threads, with and without it.
TEST(MklSerial, Bf16SdpaValuesUnchanged) {
  ThreadsGuard tg;
  at::set_num_threads(2);
  torch::manual_seed(5);
  const int64_t B = 16, H = 9, Hkv = 3, S = 40, hd = 64;
  auto q = torch::randn({B, H, 1, hd}).to(torch::kBFloat16);
  auto k = torch::randn({B, Hkv, S, hd}).to(torch::kBFloat16);
  auto v = torch::randn({B, Hkv, S, hd}).to(torch::kBFloat16);
  auto m = torch::rand({B, 1, 1, S}) > 0.2;
  m.select(3, 0).fill_(true);  // every row attends to something
  auto sdpa = [&] { return at::scaled_dot_product_attention(q, k, v, m, 0.0, false, std::nullopt, true); };
  auto ref = sdpa();
  torch::Tensor got;
  {
    MklSerial s(true);
    got = sdpa();
  }
  EXPECT_TRUE(torch::equal(got, ref));
}

}  // namespace
}  // namespace grpo::model
