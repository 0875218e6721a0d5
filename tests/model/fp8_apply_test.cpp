// kernels.fp8 through the apply step: refused with one line naming the key where it cannot run
// (CPU here; a pre-Hopper GPU), and on an sm_90 GPU the decoder linears really run grpo::fp8_linear
// in forward and backward (dispatcher counts), nothing of the decoder stays an nn::Linear, the
// master weights are unchanged, and the result is FP8-close to the bf16 model without being equal.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "grpo/kernels/ops.h"
#include "grpo/model/apply_kernels.h"
#include "grpo/model/transformer.h"
#include "grpo/util/error.h"
#include "op_counter.h"
#include "test_support.h"

namespace grpo::model {
namespace {

using testing::OpCounter;

constexpr int kLayers = 2;

config::ModelConfig dense_config() {
  config::ModelConfig c;
  c.vocab_size = 64;
  c.hidden_size = 256;  // two 128-wide K tiles; intermediate 320 leaves a partial tile
  c.intermediate_size = 320;
  c.num_hidden_layers = kLayers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  return c;
}

config::ModelConfig moe_config() {
  config::ModelConfig c = dense_config();
  c.moe.num_experts = 4;
  c.moe.num_experts_per_tok = 2;
  c.moe.moe_intermediate_size = 96;
  c.moe.n_shared_experts = 1;  // with its sigmoid gate (a Linear(D -> 1) that stays plain)
  return c;
}

std::string refusal(Transformer& t) {
  config::KernelsConfig k;
  k.fp8 = true;
  try {
    apply_kernels(*t, k, /*log_line=*/false);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Fp8Apply, RefusedOnACpuModelWithOneLineNamingTheKey) {
  Transformer t(spec_from_config(dense_config()));
  const std::string msg = refusal(t);
  ASSERT_NE(msg, "") << "kernels.fp8 on a CPU model must be refused";
  EXPECT_EQ(msg.rfind("kernels.fp8: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("FP8 linears need a CUDA sm_90 GPU, but the model is on cpu"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// ---- CUDA ------------------------------------------------------------------------------------

int capability() { return torch::cuda::is_available() ? kernels::cuda_compute_capability(0) : 0; }

#define REQUIRE_CUDA()                                                                                 \
  do {                                                                                                 \
    if (!torch::cuda::is_available() || !kernels::have_cuda_kernels())                                 \
      GTEST_SKIP() << "no CUDA device" << (kernels::have_cuda_kernels() ? "" : " (and no CUDA kernels)"); \
  } while (0)
#define REQUIRE_SM90()                                                                    \
  do {                                                                                    \
    REQUIRE_CUDA();                                                                       \
    if (capability() < 90) GTEST_SKIP() << "needs sm_90 (this GPU is sm_" << capability() << ")"; \
  } while (0)

TEST(Fp8ApplyCuda, RefusedBeforeHopper) {
  REQUIRE_CUDA();
  if (capability() >= 90) GTEST_SKIP() << "needs a pre-sm_90 GPU (this one is sm_" << capability() << ")";
  Transformer t(spec_from_config(dense_config()));
  t->to(torch::kCUDA);
  const std::string msg = refusal(t);
  EXPECT_NE(msg.find("kernels.fp8: FP8 linears need a CUDA sm_90 (Hopper) GPU"), std::string::npos) << msg;
}

struct Outcome {
  torch::Tensor hidden;
  std::map<std::string, torch::Tensor> grads;
};

Outcome forward_backward(Transformer& t) {
  torch::manual_seed(9);
  auto ids = torch::randint(0, 64, {2, 40}, torch::TensorOptions(torch::kCUDA).dtype(torch::kInt64));
  auto proj = torch::randn({2, 40, 256}, torch::TensorOptions(torch::kCUDA).dtype(torch::kBFloat16));
  t->zero_grad();
  auto out = t->forward(ids, torch::ones_like(ids));
  (out.hidden * proj).sum().backward();
  Outcome r{out.hidden.detach(), {}};
  for (const auto& p : t->named_parameters())
    if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
  return r;
}

double rel_l2(const torch::Tensor& a, const torch::Tensor& b) {
  auto ad = a.to(torch::kCPU, torch::kDouble), bd = b.to(torch::kCPU, torch::kDouble);
  return (ad - bd).norm().item<double>() / std::max(bd.norm().item<double>(), 1e-300);
}

Transformer make(const config::ModelConfig& c) {
  torch::manual_seed(3);
  Transformer t(spec_from_config(c));
  t->to(torch::kCUDA, torch::kBFloat16);
  return t;
}

TEST(Fp8ApplyCuda, DenseDecoderLinearsRunFp8ForwardAndBackward) {
  REQUIRE_SM90();
  Transformer plain = make(dense_config()), fp8 = make(dense_config());
  config::KernelsConfig k;
  k.fp8 = true;
  const std::string line = apply_kernels(*fp8, k, false);
  EXPECT_NE(line.find(" fp8=on(7 linears/layer)"), std::string::npos) << line;
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : fp8->named_parameters()) before[p.key()] = p.value().detach().clone();
  Outcome ref, got;
  {
    OpCounter c;
    ref = forward_backward(plain);
    EXPECT_EQ(c.with_prefix("grpo::fp8"), 0);
    EXPECT_EQ(c["aten::linear"], 7 * kLayers) << "the counter sees the plain linears";
  }
  {
    OpCounter c;
    got = forward_backward(fp8);
    // Per linear: one fp8_linear; its Function runs three FP8 GEMMs (forward, dgrad, wgrad) and
    // quantises six operands (x, w; dy, w^T; dy^T, x^T).
    EXPECT_EQ(c["grpo::fp8_linear"], 7 * kLayers);
    EXPECT_EQ(c["grpo::fp8_gemm"], 3 * 7 * kLayers);
    EXPECT_EQ(c["grpo::fp8_quantize"], 6 * 7 * kLayers);
    EXPECT_EQ(c["aten::linear"], 0) << "no decoder linear may stay in bf16";
  }
  // Master weights: same dtype, same values (FP8 copies are made per call, never stored).
  for (const auto& p : fp8->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kBFloat16) << p.key();
    EXPECT_TRUE(torch::equal(p.value().detach(), before.at(p.key()))) << p.key();
  }
  // FP8 changes the numbers (it is not bf16 under another name) but only by FP8 rounding: each
  // GEMM carries about 4-5% relative L2 error (fp8_linear_bound_test.cpp); two layers of
  // residual stream and a final RMSNorm keep the hidden states within 25% and far from equal.
  const double h = rel_l2(got.hidden, ref.hidden);
  EXPECT_GT(h, 1e-3) << "fp8 hidden states equal the bf16 ones";
  EXPECT_LT(h, 0.25);
  ASSERT_EQ(got.grads.size(), ref.grads.size());
  for (const auto& [name, g] : ref.grads) {
    auto a = got.grads.at(name).to(torch::kCPU, torch::kDouble).reshape(-1), b = g.to(torch::kCPU, torch::kDouble).reshape(-1);
    const double cos = (a * b).sum().item<double>() / std::max(a.norm().item<double>() * b.norm().item<double>(), 1e-300);
    EXPECT_GT(cos, 0.9) << name << ": the FP8 gradient points elsewhere";
  }
}

TEST(Fp8ApplyCuda, MoeExpertsRunFp8InTheLoop) {
  REQUIRE_SM90();
  Transformer t = make(moe_config());
  config::KernelsConfig k;
  k.fp8 = true;
  k.fused_ops = true;
  const std::string line = apply_kernels(*t, k, false);
  EXPECT_NE(line.find(" moe=loop(fp8 experts)"), std::string::npos) << line;
  OpCounter c;
  forward_backward(t);
  EXPECT_EQ(c.with_prefix("grpo::moe"), 0) << "the grouped GEMM has no FP8 variant";
  // Per layer: 4 attention linears + 3 of the shared expert + 3 per expert that received tokens
  // (80 tokens x 2 slots over 4 experts: all of them, all but surely; at least one).
  EXPECT_GE(c["grpo::fp8_linear"], kLayers * (4 + 3 + 3));
  EXPECT_LE(c["grpo::fp8_linear"], kLayers * (4 + 3 + 3 * 4));
  // What stays plain: each layer's router (gate) and shared-expert gate, Linear(D -> E) / (D -> 1).
  EXPECT_EQ(c["aten::linear"], 2 * kLayers);
}

}  // namespace
}  // namespace grpo::model
