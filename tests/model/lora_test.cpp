// LoRA (model/lora.h, model/lora_peft.h) against PEFT: tiny random Llama and Qwen2, float64, the
// reference files written by scripts/make_lora_refs.py (committed in tests/model/data/lora):
// logits, adapter gradients, the base model with adapters disabled, merge_and_unload(), rslora on
// and off; plus PEFT file round trips and the config semantics (init, scaling, frozen base).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "grpo/model/hf_weights.h"
#include "grpo/model/lora.h"
#include "grpo/model/lora_peft.h"
#include "grpo/model/weights_io.h"
#include "grpo/util/error.h"
#include "test_support.h"

namespace grpo::model {
namespace {

using testing::rel_err;

std::string lora_data(const std::string& arch) { return std::string(GRPO_SOURCE_DIR) + "/tests/model/data/lora/" + arch; }

// Every tensor of a reference file in its own dtype (F64 included).
std::map<std::string, torch::Tensor> read_refs(const std::string& path) {
  safetensors::File f(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& t : f.tensors())
    out[t.name] = torch::from_blob(const_cast<void*>(f.data(t)), t.shape, torch_dtype(t.dtype, path)).clone();
  return out;
}

// The base model in float64 (its file holds float32-exact values, so nothing is lost).
Transformer base_f64(const std::string& arch) {
  Transformer m = load_hf(lora_data(arch));
  m->to(torch::kFloat64);
  m->eval();
  return m;
}

torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& ids) {
  const int64_t T = ids.size(1);
  auto lp = logits.narrow(1, 0, T - 1).log_softmax(-1).gather(-1, ids.narrow(1, 1, T - 1).unsqueeze(-1));
  return -lp.sum();
}

struct Case {
  std::string arch, variant;
};
std::string case_name(const ::testing::TestParamInfo<Case>& i) { return i.param.arch + "_" + i.param.variant; }

class LoraVsPeft : public ::testing::TestWithParam<Case> {};

TEST_P(LoraVsPeft, LogitsGradientsDisabledAndMergedEqualPeft) {
  const auto& [arch, variant] = GetParam();
  auto refs = read_refs(lora_data(arch) + "/refs.safetensors");
  const std::string adapter = lora_data(arch) + (variant == "rslora" ? "/adapter_rslora" : "/adapter");
  Transformer m = base_f64(arch);
  const auto cfg = read_peft_adapter_config(adapter);
  EXPECT_EQ(cfg.use_rslora, variant == "rslora");
  apply_lora(*m, cfg);
  load_peft_adapter_weights(*m, adapter);
  ASSERT_EQ(lora_adapters(*m).size(), 14u);  // 2 layers x (4 attention + 3 MLP projections)

  const auto ids = refs.at("input_ids");
  auto logits = m->logits(m->forward(ids).hidden);  // [2, 7, V] float64
  EXPECT_LE(rel_err(logits, refs.at(variant + ".logits")), 1e-10);
  loss_of(logits, ids).backward();
  int grads = 0;
  for (const auto& [name, t] : lora_weights(*m)) {
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_LE(rel_err(t.grad(), refs.at(variant + ".grad." + peft_adapter_key(name))), 1e-10) << name;
    ++grads;
  }
  EXPECT_EQ(grads, 28);
  for (const auto& p : m->named_parameters())  // the base is frozen: no gradient reaches it
    if (p.key().find(".lora.") == std::string::npos) EXPECT_FALSE(p.value().grad().defined()) << p.key();

  torch::NoGradGuard ng;
  {
    LoraDisabled off(*m);
    auto base = m->logits(m->forward(ids).hidden);
    EXPECT_LE(rel_err(base, refs.at(variant + ".base_logits")), 1e-10);
    // The reference by disabling is exactly a separately loaded base model (same ops, same order).
    Transformer plain = base_f64(arch);
    EXPECT_TRUE(torch::equal(base, plain->logits(plain->forward(ids).hidden)));
  }
  EXPECT_TRUE(torch::equal(m->logits(m->forward(ids).hidden), logits.detach()));  // guard restored

  int merged = 0;
  for (const auto& [name, t] : merged_weights(*m)) {
    const auto key = variant + ".merged." + (name == "lm_head.weight" ? name : "model." + name);
    ASSERT_TRUE(refs.count(key)) << key;
    EXPECT_LE(rel_err(t, refs.at(key)), 1e-12) << name;
    ++merged;
  }
  EXPECT_GE(merged, 20);
}

// float32 (the training dtype on CPU): the same adapters against the float64 reference. Bound 1e-5
// relative, as the float32 parity with transformers (hf_parity_test.cpp): float32 rounding of a
// 2-layer forward with O(1) logits is ~1e-7 per op, a few hundred ops deep.
TEST_P(LoraVsPeft, Float32WithinFloat32RoundingOfPeft) {
  const auto& [arch, variant] = GetParam();
  auto refs = read_refs(lora_data(arch) + "/refs.safetensors");
  const std::string adapter = lora_data(arch) + (variant == "rslora" ? "/adapter_rslora" : "/adapter");
  Transformer m = load_hf(lora_data(arch));
  apply_lora(*m, read_peft_adapter_config(adapter));
  load_peft_adapter_weights(*m, adapter);
  const auto ids = refs.at("input_ids");
  auto logits = m->logits(m->forward(ids).hidden);
  ASSERT_EQ(logits.scalar_type(), torch::kFloat32);
  EXPECT_LE(rel_err(logits, refs.at(variant + ".logits")), 1e-5);
  loss_of(logits, ids).backward();
  for (const auto& [name, t] : lora_weights(*m))
    EXPECT_LE(rel_err(t.grad(), refs.at(variant + ".grad." + peft_adapter_key(name))), 1e-4) << name;
}

INSTANTIATE_TEST_SUITE_P(Refs, LoraVsPeft,
                         ::testing::Values(Case{"llama", "plain"}, Case{"llama", "rslora"}, Case{"qwen2", "plain"},
                                           Case{"qwen2", "rslora"}),
                         case_name);

TEST(Lora, SavedAdapterReloadsBitExactWithPeftKeysAndConfig) {
  Transformer m = base_f64("qwen2");
  const auto src = lora_data("qwen2") + "/adapter";
  apply_lora(*m, read_peft_adapter_config(src));
  load_peft_adapter_weights(*m, src);
  const auto dir = (std::filesystem::temp_directory_path() / ("lora_save_" + std::to_string(::getpid()))).string();
  config::LoraConfig cfg = read_peft_adapter_config(src);
  save_peft_adapter(*m, cfg, lora_data("qwen2"), dir);
  // Same keys and values as the file PEFT wrote.
  auto theirs = read_refs(src + "/adapter_model.safetensors");
  auto ours = read_refs(dir + "/adapter_model.safetensors");
  ASSERT_EQ(ours.size(), theirs.size());
  for (const auto& [k, t] : theirs) {
    ASSERT_TRUE(ours.count(k)) << k;
    EXPECT_TRUE(torch::equal(ours.at(k).to(t.scalar_type()), t)) << k;
  }
  const auto back = read_peft_adapter_config(dir);
  EXPECT_EQ(back.r, 4);
  EXPECT_DOUBLE_EQ(back.lora_alpha, 6.0);
  EXPECT_EQ(back.target_modules.size(), 7u);
  std::filesystem::remove_all(dir);
}

TEST(Lora, InitScalingTargetsAndErrorsFollowPeft) {
  Transformer m = base_f64("llama");
  config::LoraConfig c;
  c.r = 8;
  c.lora_alpha = 16;
  c.target_modules = {"q_proj", "v_proj"};
  torch::manual_seed(0);
  apply_lora(*m, c);
  auto ad = lora_adapters(*m);
  ASSERT_EQ(ad.size(), 4u);
  for (const auto& [name, a] : ad) {
    EXPECT_TRUE(name.ends_with("q_proj") || name.ends_with("v_proj")) << name;
    EXPECT_DOUBLE_EQ(a->scaling, 2.0);  // alpha / r
    EXPECT_EQ(a->B.abs().max().item<double>(), 0.0);  // PEFT default: B = 0, the model starts as the base
    const double bound = 1.0 / std::sqrt(double(a->A.size(1)));  // kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(in))
    EXPECT_LE(a->A.abs().max().item<double>(), bound);
    EXPECT_GE(a->A.abs().max().item<double>(), 0.8 * bound);
  }
  EXPECT_THROW(apply_lora(*m, c), InputError);  // twice

  Transformer g = base_f64("llama");
  c.use_rslora = true;
  c.init_lora_weights = config::LoraInit::GAUSSIAN;
  c.target_modules = {"all-linear"};
  apply_lora(*g, c);
  auto gad = lora_adapters(*g);
  ASSERT_EQ(gad.size(), 14u);
  EXPECT_DOUBLE_EQ(gad[0].second->scaling, 16.0 / std::sqrt(8.0));
  auto all_a = torch::cat({gad[0].second->A.flatten(), gad[1].second->A.flatten(), gad[5].second->A.flatten()});
  EXPECT_NEAR(all_a.std().item<double>(), 1.0 / 8, 0.01);  // gaussian: std 1/r
  int trainable = 0;
  for (const auto& p : g->parameters()) trainable += p.requires_grad();
  EXPECT_EQ(trainable, 28);

  config::LoraConfig bad;
  bad.r = 4;
  bad.target_modules = {"lm_head"};
  Transformer b = base_f64("llama");
  EXPECT_THROW(apply_lora(*b, bad), InputError);
  config::LoraConfig off;  // r = 0: nothing changes
  EXPECT_EQ(apply_lora(*b, off), "lora: off");
  EXPECT_FALSE(has_lora(*b));
}

}  // namespace
}  // namespace grpo::model

namespace grpo::model {
namespace {

// lora_dropout as PEFT applies it: lora_B(lora_A(dropout(x))) * scaling, on the adapter's INPUT,
// in training mode only. With a one-hot x the input mask keeps or drops the whole input, so every
// training-mode delta is either 0 or the eval delta / (1 - p) (inverted dropout), and both occur;
// a dropout on A's or B's output would zero components independently and fail this.
TEST(Lora, DropoutOnTheInputInTrainingModeOnly) {
  torch::manual_seed(3);
  const double p = 0.5;
  LoraAdapter a(6, 5, 3, 2.0, p, config::LoraInit::RANDOM, torch::kFloat64, torch::kCPU);
  auto x = torch::zeros({1, 6}, torch::kFloat64);
  x[0][2] = 1.0;
  a->eval();
  const auto full = a->delta(x);
  ASSERT_GT(full.abs().min().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(a->delta(x), full)) << "eval mode must not drop";
  a->train();
  int kept = 0, dropped = 0;
  for (int i = 0; i < 200; ++i) {
    const auto d = a->delta(x);
    if (torch::equal(d, torch::zeros_like(d))) ++dropped;
    else {
      EXPECT_LT((d - full / (1 - p)).abs().max().item<double>(), 1e-12) << "sample " << i;
      ++kept;
    }
  }
  EXPECT_GT(kept, 50);
  EXPECT_GT(dropped, 50);
}

}  // namespace
}  // namespace grpo::model
