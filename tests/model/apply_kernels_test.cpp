// kernels.fused_ops through the apply step: the switch must really route the model onto the
// grpo:: dispatcher ops (counted by a RecordFunction callback on every dispatcher call, not by a
// flag the code sets), must leave them unused when off, and must not change what the model
// computes (float64 on CPU: outputs and gradients within 1e-10 relative of the plain model).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "grpo/model/apply_kernels.h"
#include "grpo/model/transformer.h"
#include "op_counter.h"
#include "test_support.h"

namespace grpo::model {
namespace {

using testing::OpCounter;

constexpr int kLayers = 2;

// Dense Qwen3-style model: q/k norms exercise rms_norm on [B, T, H, hd] views too.
ModelSpec dense_spec() {
  config::ModelConfig c;
  c.vocab_size = 40;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = kLayers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.qk_norm = true;
  return spec_from_config(c);
}

struct Result {
  torch::Tensor hidden;                        // [B, T, D] float64
  std::map<std::string, torch::Tensor> grads;  // by parameter name
};

// Forward + backward of a loss touching every position (a fixed random projection of hidden).
Result run(Transformer& m) {
  torch::manual_seed(7);
  auto ids = torch::randint(0, m->spec().vocab_size, {2, 9}, torch::kInt64);
  auto mask = torch::ones({2, 9}, torch::kInt64);
  mask.index_put_({1, torch::indexing::Slice(6)}, 0);  // right padding in row 1
  auto proj = torch::randn({2, 9, m->spec().hidden_size}, torch::kFloat64);
  m->zero_grad();
  auto out = m->forward(ids, mask);
  (out.hidden * proj).sum().backward();
  Result r{out.hidden.detach(), {}};
  for (const auto& p : m->named_parameters()) r.grads[p.key()] = p.value().grad().clone();
  return r;
}

Transformer make_model(bool fused) {
  torch::manual_seed(3);  // same seed: the same initial weights in both models
  Transformer m(dense_spec());
  m->to(torch::kFloat64);
  config::KernelsConfig k;
  k.fused_ops = fused;
  const std::string line = apply_kernels(*m, k);
  EXPECT_NE(line.find(fused ? "rms_norm=grpo::add_rms_norm+rms_norm(cpu)" : "rms_norm=plain"), std::string::npos)
      << line;
  return m;
}

TEST(ApplyKernels, FusedOpsDispatchToGrpoOpsAndMatchPlainInFloat64) {
  Transformer plain = make_model(false), fused = make_model(true);
  Result ref, got;
  {
    OpCounter c;
    ref = run(plain);
    EXPECT_EQ(c.with_prefix("grpo::"), 0) << "fused_ops off must not call any grpo:: op";
    EXPECT_GT(c["aten::mul"], 0) << "the counter itself must see dispatcher calls";
  }
  {
    OpCounter c;
    got = run(fused);
    // Expected counts from the architecture, per forward: each layer has input_layernorm, q_norm
    // and k_norm alone plus post_attention_layernorm fused with the residual add; one final norm.
    EXPECT_EQ(c["grpo::rms_norm"], 3 * kLayers + 1);
    EXPECT_EQ(c["grpo::add_rms_norm"], kLayers);
    EXPECT_EQ(c["grpo::swiglu"], kLayers);
    EXPECT_EQ(c["grpo::rope"], kLayers);
    // Backward runs the ops' own backward kernels: one per norm, per SwiGLU; RoPE's backward is
    // the in-place inverse rotation (one rope_ call per layer forward, one per layer backward).
    EXPECT_EQ(c["grpo::_rms_norm_bwd"], 4 * kLayers + 1);
    EXPECT_EQ(c["grpo::_swiglu_bwd"], kLayers);
    EXPECT_EQ(c["grpo::rope_"], 2 * kLayers);
  }
  // float64 on both sides: the ops reorder a few roundings at most (e.g. x*sigmoid(x) vs silu).
  EXPECT_LE(testing::rel_err(got.hidden, ref.hidden), 1e-10);
  ASSERT_EQ(got.grads.size(), ref.grads.size());
  for (const auto& [name, g] : ref.grads) {
    ASSERT_TRUE(got.grads.count(name)) << name;
    EXPECT_LE(testing::rel_err(got.grads.at(name), g), 1e-10) << name;
  }
}

TEST(ApplyKernels, SwitchingBackToPlainStopsTheGrpoCalls) {
  Transformer m = make_model(true);
  config::KernelsConfig off;
  apply_kernels(*m, off);
  OpCounter c;
  run(m);
  EXPECT_EQ(c.with_prefix("grpo::"), 0);
}

TEST(ApplyKernels, Fp8IsRefusedNotIgnored) {
  Transformer m(dense_spec());
  config::KernelsConfig k;
  k.fp8 = true;
  try {
    apply_kernels(*m, k);
    FAIL() << "kernels.fp8 must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("kernels.fp8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace grpo::model
